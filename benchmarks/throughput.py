"""Throughput of the real-time LiveMind protocol with several questions in flight.

Loads the model once, then solves the same questions at each ``--concurrency`` value
(``live_mind.concurrency.solve_concurrently``: continuous scheduling, vLLM through its
async engine) under a token-cost profile, and prints per N: wall time, questions per
second, the speedup over the first N (normally 1), the 1-minute load average before and
after, and how many questions have exactly the ``time_info`` of the first N's run --
with, for the others, where their replies part (first differing call, characters in
common).  The engine's prefix cache is emptied before every N so no run starts warm.

Throughput is measured on many more questions than slots: with N questions at N in flight
the run lasts as long as its longest question, which measures that question, not the
rate.  A level N with fewer than ``MIN_QUESTIONS_PER_SLOT`` (4) questions per slot is
refused (exit 2) unless ``--allow_few`` is given, and then marked in the table.

Usage (280 questions: 20 per category of the paper's 1,400):

    python benchmarks/throughput.py --model smollm2-135m-vllm --timing local-smollm2-135m \\
        --concurrency 1,8,28,64 --num_questions 20 --data_path ../shared/data/mmlu-pro-1400

Every other flag is ``run_solver.py``'s (``--method livemind`` unless a method is given); ``--dtype`` overrides
the vLLM entry's dtype (e.g. float32), ``--records DIR`` keeps each N's records,
``--limit K`` keeps the first K selected questions (smoke runs).
Wall-clock figures mean something only on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live_mind import (
    cli,  # noqa: E402
    flags,  # noqa: E402
)
from live_mind.commands import run as run_solver  # noqa: E402 - the solver's flags and checks
from live_mind.concurrency import solve_concurrently  # noqa: E402
from live_mind.loading import timing_config  # noqa: E402
from live_mind.models.aio import native_async, serializer  # noqa: E402
from live_mind.models.capabilities import capabilities  # noqa: E402

MIN_QUESTIONS_PER_SLOT = 4


def too_few(questions: int, levels: list[int], ratio: int = MIN_QUESTIONS_PER_SLOT) -> list[int]:
    """The levels N with fewer than ``ratio`` questions per slot (``questions < ratio * N``)."""
    return [n for n in levels if questions < ratio * n]


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, argparse.Namespace]:
    parser = flags.ArgumentParser(description=__doc__.splitlines()[0], add_help=True)
    parser.add_argument("--concurrency", default="1,8,28,64", help="comma-separated N values (default 1,8,28,64)")
    parser.add_argument("--dtype", default=None, help="override the vLLM/transformers entry's dtype")
    parser.add_argument("--records", default=None, metavar="DIR", help="write each N's records to DIR/n<N>.json")
    parser.add_argument("--limit", type=int, default=None, help="only the first K selected questions (smoke runs)")
    parser.add_argument("--allow_few", action="store_true",
                        help=f"measure levels with fewer than {MIN_QUESTIONS_PER_SLOT} questions per slot anyway (marked)")
    own, rest = parser.parse_known_args(argv)
    try:
        own.levels = [int(n) for n in own.concurrency.split(",") if n.strip()]
    except ValueError:
        own.levels = []
    chosen = any(flag in rest for flag in ("--use_lm", "--use-lm", "--method"))
    solver_args = run_solver.parse_args(rest if chosen else [*rest, "--method", "livemind"])
    return own, solver_args


def parting(first: dict, other: dict) -> str:
    """Where two records' replies part: ``call k, c chars in common`` (or ``same replies``)."""
    for k, (a, b) in enumerate(zip(first.get("steps", []), other.get("steps", []))):
        if a.get("response") != b.get("response"):
            ra, rb = a.get("response") or "", b.get("response") or ""
            common = next((i for i, (x, y) in enumerate(zip(ra, rb)) if x != y), min(len(ra), len(rb)))
            return f"call {k + 1}, {common} chars in common"
    return "same replies" if len(first.get("steps", [])) == len(other.get("steps", [])) else "another number of calls"


def main(argv: list[str] | None = None) -> int:
    own, args = parse(argv)
    if not own.levels or min(own.levels) < 1:
        return cli.fail("--concurrency must be a comma-separated list of integers >= 1")
    if args.timing == "measured":
        return cli.fail("--timing PROFILE is required: measured wall time is distorted when questions share the engine")
    scratch = tempfile.mkdtemp(prefix="throughput-")
    ignored = [flag for flag in ("--output_file", "--overwrite") if any(a == flag or a.startswith(flag + "=") for a in (argv or sys.argv[1:]))]
    if ignored:  # each N writes its own run into a scratch folder (--records DIR keeps them)
        print(f"note: {' and '.join(ignored)} ignored: every N runs into {scratch} (use --records DIR to keep the records)",
              file=sys.stderr)
    args.output_file, args.overwrite, args.concurrency = str(Path(scratch) / "run.json"), True, max(own.levels)
    try:
        setup = cli.validate(args, "time_info", run_solver.timing_checks)
        questions = cli.load_selected_questions(setup.run)[:own.limit]
    except cli.UsageError as exc:
        return cli.fail(str(exc))
    few = too_few(len(questions), own.levels)
    if few and not own.allow_few:
        return cli.fail(f"{len(questions)} questions are fewer than {MIN_QUESTIONS_PER_SLOT} per slot at N = {few}: "
                        "that measures the longest question, not throughput; select more questions or pass --allow_few")
    # Built once for the highest N (batched decoding where the backend has it); each level
    # then only sets how many waiting requests the per-model worker takes at once.
    loaded = cli.load_models(setup, concurrency=max(2, args.concurrency), batch=True, prefill=args.prefill_while_typing,
                             **({"dtype": own.dtype} if own.dtype else {}))
    timing = timing_config(setup.run)
    print(f"{len(questions)} questions, model {args.model}, profile {args.timing}, N = {own.levels}")
    print("| N | questions | wall s | questions/s | speedup | load avg before/after | identical time_info | replies part |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    first: dict | None = None
    base_rate = None
    for n in own.levels:
        for model in loaded.values():
            clear = getattr(model.inner, "clear_prefix_cache", None)  # a backend extra, behind the outage guard
            if callable(clear):
                clear()
        for model in loaded.values():
            if capabilities(model).batch_decode and not native_async(model):
                serializer(model, max_batch=n)
        before = os.getloadavg()[0]
        start = time.perf_counter()
        records = solve_concurrently(lambda: cli.build_controller(setup, loaded), questions, timing, n)
        wall = time.perf_counter() - start
        after = os.getloadavg()[0]
        by_id = {r["question_id"]: r for r in records}
        if own.records:
            Path(own.records).mkdir(parents=True, exist_ok=True)
            (Path(own.records) / f"n{n}.json").write_text(json.dumps(records, indent=1))
        first = first or by_id
        same = [q for q, r in by_id.items() if q in first and r.get("time_info") == first[q].get("time_info")]
        parts = sorted({parting(first[q], r) for q, r in by_id.items() if q in first and q not in same})
        rate = len(records) / wall
        base_rate = base_rate or rate
        print(f"| {n} | {len(records)}{' (few)' if n in few else ''} | {wall:.1f} | {rate:.3f} | {rate / base_rate:.2f}x | {before:.2f}/{after:.2f} "
              f"| {len(same)}/{len(records)} | {'; '.join(parts) or '-'} |", flush=True)
    for model in loaded.values():
        for holder in (getattr(model.inner, "engine", None), getattr(model.inner, "sessions", None)):
            if holder is not None and hasattr(holder, "shutdown"):
                holder.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
