"""Replicas behind vllm-router: does a routing policy keep a question's prefix on one replica?

Starts ``--replicas`` llama.cpp servers with the embedded model (``benchmarks/replica.py``,
one thread each, each with its own request log), runs the real-time LiveMind protocol
(``run_solver.py --use_lm``, entry ``smollm2-135m-router``) against one of them alone
(``single``) and then through ``vllm-router`` under each ``--policy``, and stops everything
again.  Every run starts from fresh replicas, so no run inherits a warm cache.

    python benchmarks/scaleout.py --replicas 2 --policies round_robin,cache_aware,consistent_hash \\
        --data_path ../shared/data/mmlu-pro-1400 --num_questions 1 --concurrency 4 --json scaleout.json

The entry sends each call's question id as ``X-Session-ID`` (and as the body's ``user``),
which vllm-router's ``consistent_hash`` hashes; the replicas' logs say which replica served
which question's call.  Per run, ``--json`` holds:

* ``calls_per_replica`` -- calls each replica served;
* ``affinity`` -- mean over questions of the share of its calls served by the replica
  that served its first call;
* ``engine_cached_from_step2`` -- mean prompt tokens per call the engine did not recompute
  (llama.cpp's prefix match), over each question's calls from its second on;
* ``cache_states_max`` -- the most prompt states one replica's RAM cache held (``--cache_mb``);
* ``questions_per_s`` -- questions / wall time of the run (the client process, start to
  end; shared cores make this noise: compare the token figures);
* ``other_requests`` -- requests the replicas got that were no model call (vllm-router's
  ``cache_aware`` asks each worker to tokenize); ``unkeyed_calls`` -- model calls without key;
  ``keys`` -- distinct keys seen (one per question when the key is stable);
* ``own_prefix_from_step2`` -- the same mean for the prefix each call shares with its own
  question's earlier calls (the records' modelled per-question cache), what routing can
  keep at best; the instruction preamble every question shares is in any replica's cache;
* ``identical_to_single`` -- every record's ``time_info``, ``usage`` (without the engine's
  own cached count, a diagnostic) and ``solution`` equal the ``single`` run's.

Timing is modelled (``--timing``, default ``local-smollm2-135m``), so records do not depend
on which replica answered, only on the replies.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from live_mind import flags  # noqa: E402

POLICIES = ("round_robin", "random", "cache_aware", "consistent_hash", "power_of_two", "sticky_least_loaded")
ENTRY = "smollm2-135m-router"
COMPLETIONS = ("/v1/completions", "/v1/chat/completions")
READY_S = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, what: str, log: Path, timeout: float = READY_S) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text(errors='replace')[-1500:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready after {timeout:.0f} s") from None
            time.sleep(0.5)


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


class Cluster:
    """``n`` fresh replicas, optionally behind vllm-router with ``policy``; a context manager."""

    def __init__(self, scratch: Path, n: int, policy: str | None, threads: int, cache: list[str] | None = None) -> None:
        self.scratch, self.n, self.policy, self.threads, self.cache = scratch, n, policy, threads, cache or []
        self.procs: list[subprocess.Popen] = []
        self.logs = [scratch / f"replica{i}.jsonl" for i in range(n)]

    def _spawn(self, command: list[str], log: Path) -> subprocess.Popen:
        with open(log, "ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                    env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "NO_PROXY": "127.0.0.1"})
        self.procs.append(proc)
        return proc

    def __enter__(self) -> str:
        try:
            urls = []
            for i, log in enumerate(self.logs):
                port = free_port()
                out = self.scratch / f"replica{i}.out"
                proc = self._spawn([sys.executable, str(ROOT / "benchmarks" / "replica.py"), "--port", str(port),
                                    "--log", str(log), "--name", f"r{i}", "--threads", str(self.threads), *self.cache], out)
                wait_ready(f"http://127.0.0.1:{port}/v1/models", proc, f"replica {i}", out)
                urls.append(f"http://127.0.0.1:{port}")
            if self.policy is None:
                return f"{urls[0]}/v1"
            port = free_port()
            out = self.scratch / "router.out"
            proc = self._spawn([router_binary(), "--host", "127.0.0.1", "--port", str(port), "--policy", self.policy,
                                "--worker-urls", *urls], out)
            wait_ready(f"http://127.0.0.1:{port}/v1/models", proc, "vllm-router", out)
            return f"http://127.0.0.1:{port}/v1"
        except BaseException:
            stop(self.procs)
            raise

    def __exit__(self, *exc: object) -> None:
        stop(self.procs)

    def calls(self) -> list[dict]:
        found = []
        for log in self.logs:
            if log.exists():
                found += [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
        return sorted(found, key=lambda c: c["start"])

    def completions(self) -> tuple[list[dict], int]:
        """(the model calls the replicas served, the number of other requests they got)."""
        calls = self.calls()
        served = [c for c in calls if c["path"] in COMPLETIONS and c.get("status") == 200]
        return served, len(calls) - len(served)


def router_binary() -> str:
    found = shutil.which("vllm-router") or str(Path(sys.executable).with_name("vllm-router"))
    if not Path(found).exists():
        raise FileNotFoundError("vllm-router is not installed (pip install '.[router]')")
    return found


def routing_figures(calls: list[dict], replicas: int) -> dict:
    """calls_per_replica, affinity and engine_cached_from_step2 from the replicas' logs."""
    per_replica = [sum(1 for c in calls if c["replica"] == f"r{i}") for i in range(replicas)]
    by_key: dict[str, list[dict]] = defaultdict(list)
    for call in calls:  # already in start order
        by_key[str(call["key"])].append(call)
    shares = [sum(1 for c in cs if c["replica"] == cs[0]["replica"]) / len(cs) for cs in by_key.values()]
    later = [c["engine_cached"] for cs in by_key.values() for c in cs[1:]]
    return {"calls_per_replica": per_replica, "affinity": round(sum(shares) / len(shares), 4) if shares else None,
            "engine_cached_from_step2": round(sum(later) / len(later), 2) if later else None,
            "unkeyed_calls": len(by_key.get("None", [])), "keys": len(by_key),
            "cache_states_max": max((c.get("cache_states", 0) for c in calls), default=0)}


def own_prefix(records: list[dict]) -> float | None:
    """Mean prompt tokens per call, from each question's second call on, that the question's
    own earlier prompts and replies share with the call (the records' modelled per-question
    cache): what perfect affinity could reuse beyond what any replica already holds."""
    later = [step["cached_tokens"] for record in records for step in record["steps"][1:]]
    return round(sum(later) / len(later), 2) if later else None


def comparable(record: dict) -> tuple:
    usage = {k: v for k, v in (record.get("usage") or {}).items() if k != "engine_cached_tokens"}
    return record.get("time_info"), usage, record.get("solution")


def solve(url: str, args: argparse.Namespace, output: Path) -> tuple[list[dict], float]:
    command = [sys.executable, str(ROOT / "run_solver.py"), "--model", ENTRY, "--use_lm", "--timing", args.timing,
               "--concurrency", str(args.concurrency), *(["--data_path", args.data_path] if args.data_path else []), "--num_questions",
               str(args.num_questions), "--max_new_tokens", str(args.max_new_tokens), "--output_file", str(output),
               "--overwrite"]
    env = {**os.environ, "LIVEMIND_ROUTER_URL": url, "NO_PROXY": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"run_solver.py failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(output.read_text(encoding="utf-8")), wall


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = flags.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--policies", default="round_robin,cache_aware,consistent_hash")
    parser.add_argument("--data_path", default=None, help="as run_solver.py (default: its bundled sample)")
    parser.add_argument("--num_questions", type=int, default=1, help="per category, as run_solver.py")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timing", default="local-smollm2-135m")
    parser.add_argument("--max_new_tokens", type=int, default=48, help="a short cap keeps the benchmark short")
    parser.add_argument("--threads", type=int, default=1, help="threads per replica")
    parser.add_argument("--cache_mb", type=int, default=512,
                        help="each replica's RAM cache of prompt states (MiB; 0: only the last request's KV state)")
    parser.add_argument("--cache_states", type=int, default=None,
                        help="each replica keeps at most this many prompt states (a loaded replica; default: no limit)")
    parser.add_argument("--json", default=None, metavar="OUT")
    parser.add_argument("--records", default=None, metavar="DIR", help="keep each run's records here")
    args = parser.parse_args(argv)
    args.policy_list = [p for p in args.policies.split(",") if p]
    unknown = [p for p in args.policy_list if p not in POLICIES]
    if unknown or not args.policy_list:
        parser.error(f"--policies: unknown {unknown or 'none given'}; choose from {', '.join(POLICIES)}")
    if args.replicas < 1 or args.concurrency < 1 or args.num_questions < 1 or args.threads < 1:
        parser.error("--replicas, --concurrency, --num_questions and --threads must be >= 1")
    if args.cache_mb < 0 or (args.cache_states is not None and args.cache_states < 1):
        parser.error("--cache_mb must be >= 0 and --cache_states >= 1")
    args.cache = ["--cache_mb", str(args.cache_mb), *(["--cache_states", str(args.cache_states)] if args.cache_states else [])]
    if args.data_path and not Path(args.data_path).exists():
        parser.error(f"--data_path: {args.data_path} does not exist")
    try:
        router_binary()
    except FileNotFoundError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    scratch = Path(tempfile.mkdtemp(prefix="scaleout-"))
    results: dict[str, dict] = {}
    single: list[dict] | None = None
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    for name, policy in [("single", None), *[(p, p) for p in args.policy_list]]:
        run_dir = scratch / name
        run_dir.mkdir()
        cluster = Cluster(run_dir, 1 if policy is None else args.replicas, policy, args.threads, args.cache)
        with cluster as url:
            records, wall = solve(url, args, run_dir / "all.json")
        single = single if single is not None else records
        base = {str(r["question_id"]): comparable(r) for r in single}
        same = [str(r["question_id"]) for r in records if base.get(str(r["question_id"])) == comparable(r)]
        served, other = cluster.completions()
        results[name] = {**routing_figures(served, cluster.n), "other_requests": other, "questions": len(records),
                         "questions_per_s": round(len(records) / wall, 4), "wall_s": round(wall, 1),
                         "identical_to_single": len(same) == len(records) == len(single),
                         "identical_records": len(same), "own_prefix_from_step2": own_prefix(records),
                         "load_avg_after": round(os.getloadavg()[0], 2)}
        if args.records:
            Path(args.records).mkdir(parents=True, exist_ok=True)
            shutil.copy(run_dir / "all.json", Path(args.records) / f"{name}.json")
        print(json.dumps({name: results[name]}), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
