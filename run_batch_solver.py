"""Batched LiveMind solver on MMLU-Pro (paper §4.3; v1 ``run_batch_solver.py`` protocol).

Questions are sorted by sentence count and solved ``--batch_size`` at a time in
lockstep; the final response's completion tokens stand in for latency.  Without
``--use_lm`` the batched CoT baseline runs.  Output: the v1 record list, journaled
after every batch.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time

from alive_progress import alive_bar

from live_mind import cli, faults
from live_mind.batch import batches, order_by_length, solve_batch
from live_mind.models.base import OutageExceeded
from live_mind.runfiles import RunFileError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_common_args(parser)
    parser.add_argument("--batch_size", type=int, default=128, help="questions per lockstep batch (default 128)")
    parser.add_argument("--typing_speed", type=float, default=0.25, help="seconds per character, for the timestamps")
    faults.add_fault_args(parser)
    return parser.parse_args(argv)


def _batch_checks(args: argparse.Namespace) -> None:
    if args.batch_size <= 0:
        raise cli.UsageError("--batch_size must be > 0")
    if args.typing_speed <= 0:
        raise cli.UsageError("--typing_speed must be > 0 (seconds per character)")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    started = cli.start_run(args, "batched", _batch_checks)
    if isinstance(started, int):
        return started
    setup, questions, writer = started.setup, started.questions, started.writer
    done = writer.done_ids()
    print(f"{len(questions)} questions ({len(done)} already done), batched {'LiveMind ' + args.action_set if args.use_lm else 'CoT baseline'}, "
          f"batch size {args.batch_size}, model {args.model}{' + assist ' + args.assist_model if args.assist_model else ''} -> {setup.output}")
    models = cli.load_models(setup)
    make_controller = lambda: cli.build_controller(setup, models)  # noqa: E731
    ordered = order_by_length([q for q in questions if q["question_id"] not in done], make_controller().segmenter)
    stop = {"flag": False}

    def on_sigint(signum, frame) -> None:  # noqa: ANN001
        if stop["flag"]:
            raise KeyboardInterrupt
        stop["flag"] = True
        print("\ninterrupt: finishing the current batch, then stopping (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    solving = time.perf_counter()
    try:
        with alive_bar(len(ordered), title="batches", enrich_print=False) as bar:
            faults.show_outages(models, bar.text)
            for batch in batches(ordered, args.batch_size):
                records = solve_batch(make_controller, batch, args.typing_speed, {"config_id": setup.config["config_id"]})
                writer.append_many(records)
                correct = sum(1 for r in writer.records if r.get("correct"))
                bar.text(f"accuracy {100.0 * correct / len(writer.records):.1f}%")
                bar(len(batch))
                if stop["flag"]:
                    break
    except (OutageExceeded, RunFileError) as exc:
        return faults.stopped_by_fault(exc, setup.output, len(writer.records), len(questions))
    finally:
        signal.signal(signal.SIGINT, previous)
    if stop["flag"] and len(writer.records) < len(questions):
        print(f"stopped after {len(writer.records)}/{len(questions)} questions; saved in {setup.output.with_suffix('.jsonl')}. "
              f"Resume with the same command plus --resume.", file=sys.stderr)
        return 130
    seconds = time.perf_counter() - solving
    try:
        records = writer.finish()
    except RunFileError as exc:
        return faults.stopped_by_fault(exc, setup.output, len(writer.records), len(questions))
    print(cli.summarize(records))
    solved = len(writer.records) - len(done)
    print(f"solved {solved} questions in {seconds:.1f} s after the model loaded: {solved / max(seconds, 1e-9):.3f} questions/s")
    print(f"wrote {setup.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
