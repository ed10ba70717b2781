"""Load benchmark of the session server: K simulated typists against one running server.

Each typist opens ``/v1/session``, sends ``start`` (the question's options, and
``baseline`` with ``--baseline``), types one MMLU-Pro question (the bundled sample set or
``--data_path``; typist i takes question i mod N) at ``--typing_speed`` seconds per
character -- a ``text`` message per character carrying the whole text so far (at most one
per 20 ms, as the page sends them) -- then
sends ``submit`` and waits for ``done``.  All typists start together (``--stagger S``
spreads their starts uniformly over S seconds, seeded).

Reported (printed, and written to ``--json OUT``):

* ``sessions``, ``completed`` (a ``final`` without error, and the ``baseline`` when asked),
  ``errors`` (sessions with an error event, a refused or dropped connection, or a timeout)
  and ``error_codes``;
* the headline pair, both sides timed alike -- by the server's clock, each from the moment
  its input is complete to its last token: ``server_latency_*`` (LiveMind: from the
  ``submit`` message's arrival to the end of the answer) and ``baseline_latency_*`` (the
  CoT baseline: from the start of its call, which has the complete question, to its end);
* the same pair by the client's clock, each from the moment the client could know its
  input complete to receiving the result (network and event delivery included on both
  sides): ``latency_*`` (LiveMind: sending ``submit`` -> the ``final`` event) and
  ``baseline_client_latency_*`` (the baseline, which the server starts right after the
  answer: the ``final`` event -> the ``baseline`` event);
* ``actions_before_submit``: mean number of actions a typist saw before pressing Enter;
  ``answer_tokens_mean`` and ``baseline_answer_tokens_mean``: the answers' mean length in
  tokens (answer length dominates latency on small models);
* ``server``: the server's own statistics for the run (``/v1/stats``, reset at the start):
  ``overhead_ms`` p50/p95/max per event -- the time the server adds to an event, from a
  message's arrival to its handling, and from the core emitting an event to the socket
  having sent it (model time excluded);
* the machine's load average before and after, and the CPU count.

``--serve "ARGS"`` starts ``serve.py ARGS`` on a free loopback port first (waiting up to
``--load_timeout`` seconds for the model to load) and stops it at the end; otherwise
``--url`` names a running server.  An API key is read from ``$LIVEMIND_API_KEY`` when set.

Usage::

    python benchmarks/serve_load.py --serve "--models benchmarks/serve_scripted.toml --model scripted-load \\
        --max_sessions 64" --sessions 50 --baseline --json output/serve_load_scripted_50.json
    python benchmarks/serve_load.py --url http://127.0.0.1:8000 --sessions 4 --baseline --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from live_mind import flags  # noqa: E402
from live_mind.clock import PAPER_SECONDS_PER_CHAR  # noqa: E402
from live_mind.data import DataError, load_questions  # noqa: E402
from live_mind.serve.auth import API_KEY_ENV  # noqa: E402
from live_mind.serve.limits import percentile  # noqa: E402
from live_mind.tasks.resolve import resolve_task  # noqa: E402

MIN_INTERVAL = 0.02
"""At most one ``text`` message per 20 ms (the page's coalescing): faster typing is sent
as snapshots of several characters, below the server's default rate limit."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8000", help="a running server (default http://127.0.0.1:8000)")
    p.add_argument("--serve", default=None, metavar="ARGS", help="start serve.py ARGS on a free port instead")
    p.add_argument("--sessions", type=int, default=4, help="simulated typists at once (default 4)")
    p.add_argument("--json", default=None, metavar="OUT", help="write the report here")
    p.add_argument("--data_path", default=None, help="MMLU-Pro parquet folder/file (default: the bundled sample set); the task's data")
    p.add_argument("--task", default=None, metavar="NAME|FILE",
                   help="the questions of a task (mmlu-pro, mmlu or a TOML task file, docs/tasks.md); start the server with the same --task")
    p.add_argument("--typing_speed", type=float, default=PAPER_SECONDS_PER_CHAR, help=f"s per character (default: the paper's {PAPER_SECONDS_PER_CHAR:g})")
    p.add_argument("--baseline", action="store_true", help="also run the CoT baseline after each answer")
    p.add_argument("--stagger", type=float, default=0.0, help="spread the typists' starts over this many seconds")
    p.add_argument("--seed", type=int, default=42, help="seed of the stagger and of the question order")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds one session may take before it counts as an error")
    p.add_argument("--load_timeout", type=float, default=900.0, help="--serve: seconds to wait for the server to start")
    args = p.parse_args(argv)
    if args.sessions < 1 or args.typing_speed <= 0 or args.stagger < 0:
        p.error("--sessions must be >= 1, --typing_speed > 0 and --stagger >= 0")
    return args


# --------------------------------------------------------------------------- one typist


async def typist(url: str, question: dict[str, Any], speed: float, baseline: bool, delay: float, timeout: float,
                 key: str | None) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    await asyncio.sleep(delay)
    out: dict[str, Any] = {"ok": False, "errors": [], "actions_before_submit": 0}
    headers = {"Authorization": f"Bearer {key}"} if key else None
    events: list[tuple[float, dict[str, Any]]] = []
    submitted = 0.0

    async def session() -> None:
        nonlocal submitted
        async with connect(url, additional_headers=headers, max_size=None) as ws:
            done = asyncio.Event()

            async def receive() -> None:
                async for raw in ws:
                    ev = json.loads(raw)
                    events.append((time.perf_counter(), ev))
                    if ev["type"] == "error":
                        out["errors"].append(ev["code"])
                    if ev["type"] == "done" or ev["type"] == "error" and ev["code"] in ("too_many_sessions", "unauthorized"):
                        break
                done.set()

            reader = asyncio.create_task(receive())
            await ws.send(json.dumps({"type": "start", "options": question["options"], "baseline": baseline}))
            text, start, sent = question["question"], time.perf_counter(), 0.0
            for i in range(1, len(text) + 1):
                wait = start + i * speed - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                if time.perf_counter() - sent >= MIN_INTERVAL or i == len(text):  # as the page does
                    await ws.send(json.dumps({"type": "text", "text": text[:i]}))
                    sent = time.perf_counter()
            submitted = time.perf_counter()
            out["actions_before_submit"] = sum(1 for _, ev in events if ev["type"] == "action")
            await ws.send(json.dumps({"type": "submit"}))
            await done.wait()
            await reader

    try:
        await asyncio.wait_for(session(), timeout)
    except asyncio.TimeoutError:
        out["errors"].append("timeout")
        return out
    except Exception as exc:  # noqa: BLE001 - a refused or dropped connection is a session error
        if not out["errors"]:  # else the server said why it closed (too_many_sessions, ...)
            out["errors"].append(f"connection: {type(exc).__name__}")
        return out
    final = next(((t, ev) for t, ev in events if ev["type"] == "final"), None)
    base = next((ev for _, ev in events if ev["type"] == "baseline"), None)
    if final is not None:
        out["latency"] = final[0] - submitted
        out["server_latency"] = final[1]["latency"]
        out["answer_tokens"] = final[1]["usage"]["answer_tokens"]
        if final[1].get("error"):
            out["errors"].append("final: " + final[1]["error"].split(":")[0])
    if base is not None:
        out["baseline_latency"] = base["latency"]
        if final is not None:
            base_at = next(t for t, ev in events if ev["type"] == "baseline")
            out["baseline_client_latency"] = base_at - final[0]
        out["baseline_answer_tokens"] = base["usage"]["completion_tokens"]
    out["ok"] = final is not None and not out["errors"] and (base is not None or not baseline)
    return out


# --------------------------------------------------------------------------- the run


def http_json(url: str, key: str | None, method: str = "GET") -> dict[str, Any]:
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {key}"} if key else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def spread(values: list[float], prefix: str) -> dict[str, float | None]:
    if not values:
        return {f"{prefix}_p50": None, f"{prefix}_p95": None, f"{prefix}_max": None}
    return {f"{prefix}_p50": round(percentile(values, 50), 4), f"{prefix}_p95": round(percentile(values, 95), 4),
            f"{prefix}_max": round(max(values), 4)}


async def run(args: argparse.Namespace, url: str, questions: list[dict[str, Any]], key: str | None) -> list[dict[str, Any]]:
    ws_url = url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") + "/v1/session"
    rng = random.Random(args.seed)
    delays = [rng.uniform(0, args.stagger) if args.stagger else 0.0 for _ in range(args.sessions)]
    jobs = [typist(ws_url, questions[i % len(questions)], args.typing_speed, args.baseline, delays[i], args.timeout, key)
            for i in range(args.sessions)]
    return await asyncio.gather(*jobs)


def report(args: argparse.Namespace, url: str, results: list[dict[str, Any]], server: dict[str, Any], info: dict[str, Any],
           load: tuple[tuple[float, ...], tuple[float, ...]], seconds: float) -> dict[str, Any]:
    codes: dict[str, int] = {}
    for r in results:
        for code in r["errors"]:
            codes[code] = codes.get(code, 0) + 1
    return {
        "url": url, "model": info.get("model"), "assist_model": info.get("assist_model"), "config_id": info.get("config_id"),
        "sessions": len(results), "completed": sum(r["ok"] for r in results),
        "errors": sum(1 for r in results if r["errors"]), "error_codes": codes,
        "typing_speed": args.typing_speed, "baseline": args.baseline, "stagger": args.stagger,
        **spread([r["server_latency"] for r in results if "server_latency" in r], "server_latency"),
        **spread([r["baseline_latency"] for r in results if "baseline_latency" in r], "baseline_latency"),
        **spread([r["latency"] for r in results if "latency" in r], "latency"),
        **spread([r["baseline_client_latency"] for r in results if "baseline_client_latency" in r], "baseline_client_latency"),
        "answer_tokens_mean": mean([r["answer_tokens"] for r in results if "answer_tokens" in r]),
        "baseline_answer_tokens_mean": mean([r["baseline_answer_tokens"] for r in results if "baseline_answer_tokens" in r]),
        "actions_before_submit": round(sum(r["actions_before_submit"] for r in results) / len(results), 2),
        "server": server, "wall_seconds": round(seconds, 2),
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load[0], "loadavg_after": load[1]},
    }


def mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(serve_args: str, timeout: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, str(ROOT / "serve.py"), *shlex.split(serve_args), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: serve.py exited with code {proc.returncode}")
        try:
            http_json(url + "/healthz", None)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"error: the server did not start within {timeout:g} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        questions = resolve_task(args.task, args.data_path).questions(None) if args.task else load_questions(args.data_path)
    except DataError as exc:  # a task's errors too (TaskError): one line, before any connection
        print(f"error: {exc}", file=sys.stderr)
        return 2
    random.Random(args.seed).shuffle(questions)
    key = os.environ.get(API_KEY_ENV) or None
    proc, url = start_server(args.serve, args.load_timeout) if args.serve else (None, args.url.rstrip("/"))
    try:
        info = http_json(url + "/v1/info", key)
        http_json(url + "/v1/stats/reset", key, "POST")
        before = os.getloadavg()
        start = time.perf_counter()
        results = asyncio.run(run(args, url, questions, key))
        seconds = time.perf_counter() - start
        server = http_json(url + "/v1/stats", key)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    out = report(args, url, results, server, info, (before, os.getloadavg()), seconds)
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0 if out["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
