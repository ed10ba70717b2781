"""Real-time LiveMind solver on MMLU-Pro (paper §4.1; v1 ``run_solver.py`` protocol).

Each question is typed by a simulated user (0.25 s per character); with ``--method
livemind`` (or the paper's flag, its alias) the model acts on every arrived sentence and
answers once the options are typed, with ``--method cot`` (the default) the
chain-of-thought baseline answers the complete question, and any other registered method
(``--method predgen``, docs/methods.md) runs on the same typed input and clock.  Writes the v1 record
list to ``--output_file`` (journaled per question; see ``live_mind/runfiles.py``).

``--timing PROFILE`` charges each call its modelled time from a token-cost profile
instead of its measured wall time (docs/timing.md); with a profile, ``--concurrency N``
keeps N questions in flight, each sending its next call as soon as its previous one
returns (``live_mind/concurrency.py``), and each call's cached prompt tokens are the
question's own modelled cache (``live_mind/cachemodel.py``).
"""

from __future__ import annotations

import argparse
import time

from alive_progress import alive_bar

from live_mind import cli, faults, flags
from live_mind.clock import PAPER_SECONDS_PER_CHAR
from live_mind.concurrency import solve_concurrently
from live_mind.interrupt import GracefulStop, stopped_early
from live_mind.loading import describe_method, timing_config
from live_mind.models.base import OutageExceeded
from live_mind.runfiles import RunFileError
from live_mind.solver import solve_question
from live_mind.summary import summarize


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = flags.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_common_args(parser)
    parser.add_argument("--typing_speed", type=float, default=PAPER_SECONDS_PER_CHAR, help=f"seconds per character (default {PAPER_SECONDS_PER_CHAR:g})")
    parser.add_argument("--typing_jitter", type=float, default=0.0, help="Gaussian jitter sigma per sqrt(character)")
    parser.add_argument("--schedule", default="every", choices=["every", "latest"], help="v1 every sentence, or v2 latest")
    parser.add_argument("--options_arrival", default="typed", choices=["typed", "instant"], help="v1 typed, or v2 instant")
    parser.add_argument("--cancel_on_complete", action="store_true", help="cut an inference call running when input completes")
    cli.add_timing_args(parser)
    faults.add_fault_args(parser)
    parser.add_argument("--prefill_while_typing", action="store_true",
                        help="while options are typed and the model idles, prefill them into the prefix cache (LiveMind, options typed)")
    parser.add_argument("--concurrency", type=int, default=1, metavar="N",
                        help="questions in flight (default 1; needs --timing PROFILE). What it buys depends on the backend: "
                             "vLLM (async engine) and OpenAI-compatible servers batch or serve the calls in flight together; "
                             "transformers batches a step's plain calls (batch_decode); llama.cpp in process and the scripted "
                             "model answer one call at a time")
    return parser.parse_args(argv)


def timing_checks(args: argparse.Namespace) -> None:
    if args.typing_jitter < 0:
        raise cli.UsageError("--typing_jitter must be >= 0")
    if args.prefill_while_typing and not (cli.method_of(args) == "livemind" and args.options_arrival == "typed"):
        raise cli.UsageError("--prefill_while_typing needs --method livemind and typed options (--options_arrival typed)")
    if args.concurrency < 1:
        raise cli.UsageError("--concurrency must be >= 1")
    if args.concurrency > 1 and args.timing == "measured":
        raise cli.UsageError("--concurrency needs --timing PROFILE: measured wall time is distorted when questions share the engine")


def main(argv: list[str] | None = None) -> int:
    started = cli.start_run(parse_args(argv), "time_info", timing_checks)
    if isinstance(started, int):
        return started
    run, setup, questions, writer, todo = started.setup.run, started.setup, started.questions, started.writer, started.todo
    print(f"{len(questions)} questions ({len(questions) - len(todo)} already done), {describe_method(run)}, "
          f"model {run.model}{' + assist ' + run.assist_model if run.assist_model else ''} -> {setup.output}")
    loaded = cli.load_models(setup, concurrency=run.concurrency, batch=True, prefill=run.prefill_while_typing)
    timing = timing_config(run)
    solving_started, solved_before = time.perf_counter(), len(writer.records)
    correct = sum(1 for r in writer.records if r.get("correct"))
    try:
        with GracefulStop("question") as stop, alive_bar(len(todo), title="solving", enrich_print=False) as bar:
            faults.show_outages(loaded, bar.text)

            def save(record: dict) -> bool:
                nonlocal correct
                writer.append(record)
                correct += bool(record["correct"])
                bar.text(f"accuracy {100.0 * correct / len(writer.records):.1f}%")
                bar()
                return stop.requested

            if run.concurrency > 1:
                solve_concurrently(lambda: cli.build_controller(setup, loaded), todo, timing, run.concurrency, None, save)
            else:
                controller = cli.build_controller(setup, loaded)
                for row in todo:
                    if save(solve_question(controller, row, timing)):
                        break
    except (OutageExceeded, RunFileError) as exc:
        return faults.stopped_by_fault(exc, setup.output, len(writer.records), len(questions))
    if (code := stopped_early(stop, len(writer.records), len(questions), setup.output)) is not None:
        return code
    try:
        records = writer.finish([q["question_id"] for q in questions])
    except RunFileError as exc:
        return faults.stopped_by_fault(exc, setup.output, len(writer.records), len(questions))
    print(summarize(records, run.timing))
    solved, elapsed = len(writer.records) - solved_before, time.perf_counter() - solving_started
    if solved:
        print(f"  solved {solved} questions in {elapsed:.1f} s wall time ({solved / elapsed:.3f} questions/s, "
              f"concurrency {run.concurrency})")
    print(f"wrote {setup.output}")
    return 0

