"""Batched LiveMind solver on MMLU-Pro (paper §4.3; v1 ``run_batch_solver.py`` protocol).

Questions are sorted by sentence count and solved ``--batch_size`` at a time in
lockstep; the final response's completion tokens stand in for latency.  With
``--method cot`` (the default) the batched CoT baseline runs.  Output: the v1 record list, journaled
after every batch.
"""

from __future__ import annotations

import argparse
import time

from alive_progress import alive_bar

from live_mind import cli, faults, flags
from live_mind.batch import batches, order_by_length, solve_batch
from live_mind.clock import PAPER_SECONDS_PER_CHAR
from live_mind.interrupt import GracefulStop, stopped_early
from live_mind.loading import describe_method
from live_mind.models.base import OutageExceeded
from live_mind.runfiles import RunFileError
from live_mind.summary import summarize


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = flags.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_common_args(parser)
    parser.add_argument("--batch_size", type=int, default=128, help="questions per lockstep batch (default 128)")
    parser.add_argument("--typing_speed", type=float, default=PAPER_SECONDS_PER_CHAR, help="seconds per character, for the timestamps")
    faults.add_fault_args(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    started = cli.start_run(parse_args(argv), "batched", _batch_checks)
    if isinstance(started, int):
        return started
    run, setup, questions, writer, todo = started.setup.run, started.setup, started.questions, started.writer, started.todo
    done = len(questions) - len(todo)
    print(f"{len(questions)} questions ({done} already done), batched {describe_method(run)}, "
          f"batch size {run.batch_size}, model {run.model}{' + assist ' + run.assist_model if run.assist_model else ''} -> {setup.output}")
    models = cli.load_models(setup)
    make_controller = lambda: cli.build_controller(setup, models)  # noqa: E731
    ordered = order_by_length(todo, make_controller().segmenter)
    solving = time.perf_counter()
    try:
        with GracefulStop("batch") as stop, alive_bar(len(ordered), title="batches", enrich_print=False) as bar:
            faults.show_outages(models, bar.text)
            for batch in batches(ordered, run.batch_size):
                writer.append_many(solve_batch(make_controller, batch, run.typing_speed))
                correct = sum(1 for r in writer.records if r.get("correct"))
                bar.text(f"accuracy {100.0 * correct / len(writer.records):.1f}%")
                bar(len(batch))
                if stop.requested:
                    break
    except (OutageExceeded, RunFileError) as exc:
        return faults.stopped_by_fault(exc, setup.output, len(writer.records), len(questions))
    if (code := stopped_early(stop, len(writer.records), len(questions), setup.output)) is not None:
        return code
    seconds = time.perf_counter() - solving
    try:
        records = writer.finish()
    except RunFileError as exc:
        return faults.stopped_by_fault(exc, setup.output, len(writer.records), len(questions))
    print(summarize(records))
    solved = len(writer.records) - done
    print(f"solved {solved} questions in {seconds:.1f} s after the model loaded: {solved / max(seconds, 1e-9):.3f} questions/s")
    print(f"wrote {setup.output}")
    return 0


def _batch_checks(args: argparse.Namespace) -> None:
    if args.batch_size <= 0:
        raise cli.UsageError("--batch_size must be > 0")

