"""Real-time LiveMind solver on MMLU-Pro (paper §4.1; v1 ``run_solver.py`` protocol).

Each question is typed by a simulated user (0.25 s per character); with ``--use_lm`` the
model acts on every arrived sentence and answers once the options are typed, otherwise
the chain-of-thought baseline answers the complete question.  Writes the v1 record
list to ``--output_file`` (journaled per question; see ``live_mind/runfiles.py``).

``--timing PROFILE`` charges each call its modelled time from a token-cost profile
instead of its measured wall time (docs/timing.md); with a profile, ``--concurrency N``
keeps N questions in flight, each sending its next call as soon as its previous one
returns (``live_mind/concurrency.py``), and each call's cached prompt tokens are the
question's own modelled cache (``live_mind/cachemodel.py``).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time

from alive_progress import alive_bar

from live_mind import cli
from live_mind.concurrency import batch_models, solve_concurrently
from live_mind.solver import TimingConfig, solve_question


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_common_args(parser)
    parser.add_argument("--typing_speed", type=float, default=0.25, help="seconds per character (default 0.25)")
    parser.add_argument("--typing_jitter", type=float, default=0.0, help="Gaussian jitter sigma per sqrt(character)")
    parser.add_argument("--schedule", default="every", choices=["every", "latest"], help="v1 every sentence, or v2 latest")
    parser.add_argument("--options_arrival", default="typed", choices=["typed", "instant"], help="v1 typed, or v2 instant")
    parser.add_argument("--cancel_on_complete", action="store_true", help="cut an inference call running when input completes")
    cli.add_timing_args(parser)
    parser.add_argument("--prefill_while_typing", action="store_true",
                        help="while options are typed and the model idles, prefill them into the prefix cache (LiveMind, options typed)")
    parser.add_argument("--concurrency", type=int, default=1, metavar="N",
                        help="questions in flight, their calls batched by the engine (default 1; needs --timing PROFILE)")
    return parser.parse_args(argv)


def _timing_checks(args: argparse.Namespace) -> None:
    if args.typing_speed <= 0:
        raise cli.UsageError("--typing_speed must be > 0 (seconds per character)")
    if args.typing_jitter < 0:
        raise cli.UsageError("--typing_jitter must be >= 0")
    if args.prefill_while_typing and not (args.use_lm and args.options_arrival == "typed"):
        raise cli.UsageError("--prefill_while_typing needs --use_lm and typed options (--options_arrival typed)")
    if args.concurrency < 1:
        raise cli.UsageError("--concurrency must be >= 1")
    if args.concurrency > 1 and args.timing == "measured":
        raise cli.UsageError("--concurrency needs --timing PROFILE: measured wall time is distorted when questions share the engine")


class _StopFlag:
    """Ctrl-C finishes the current question, then stops with everything saved."""

    def __init__(self) -> None:
        self.stop = False

    def __call__(self, signum, frame) -> None:  # noqa: ANN001
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        print("\ninterrupt: finishing the current question, then stopping (Ctrl-C again to abort)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    started = cli.start_run(args, "time_info", _timing_checks)
    if isinstance(started, int):
        return started
    setup, questions, writer = started.setup, started.questions, started.writer
    done = writer.done_ids()
    todo = [q for q in questions if q["question_id"] not in done]
    print(f"{len(questions)} questions ({len(done)} already done), {'LiveMind ' + args.action_set if args.use_lm else 'CoT baseline'}, "
          f"model {args.model}{' + assist ' + args.assist_model if args.assist_model else ''} -> {setup.output}")
    by_backend = ({"transformers": {"prefix_cache": True, "prefix_cache_size": max(4, args.concurrency)}}
                  if args.prefill_while_typing else {})  # one kept cache per question in flight
    if args.concurrency > 1:  # vLLM: the async engine batches the calls in flight continuously
        by_backend["vllm"] = {"async_engine": True}
    loaded = cli.load_models(setup, by_backend)
    batch_models(loaded.values(), args.concurrency)  # transformers: decode waiting plain requests together
    timing = TimingConfig(args.typing_speed, args.typing_jitter, args.seed, args.schedule, args.options_arrival, args.cancel_on_complete,
                          setup.profile, args.prefill_while_typing)
    extra = {"config_id": setup.config["config_id"]}
    stop = _StopFlag()
    previous = signal.signal(signal.SIGINT, stop)
    solving_started, solved_before = time.perf_counter(), len(writer.records)
    correct = sum(1 for r in writer.records if r.get("correct"))
    try:
        with alive_bar(len(todo), title="solving", enrich_print=False) as bar:
            def save(record: dict) -> bool:
                nonlocal correct
                writer.append(record)
                correct += bool(record["correct"])
                bar.text(f"accuracy {100.0 * correct / len(writer.records):.1f}%")
                bar()
                return stop.stop

            if args.concurrency > 1:
                solve_concurrently(lambda: cli.build_controller(setup, loaded), todo, timing, args.concurrency, extra, save)
            else:
                controller = cli.build_controller(setup, loaded)
                for row in todo:
                    if save(solve_question(controller, row, timing, extra)):
                        break
    finally:
        signal.signal(signal.SIGINT, previous)
    if stop.stop and len(writer.records) < len(questions):
        print(f"stopped after {len(writer.records)}/{len(questions)} questions; saved in {setup.output.with_suffix('.jsonl')}. "
              f"Resume with the same command plus --resume.", file=sys.stderr)
        return 130
    records = writer.finish([q["question_id"] for q in questions])
    print(cli.summarize(records, args.timing))
    solved, elapsed = len(writer.records) - solved_before, time.perf_counter() - solving_started
    if solved:
        print(f"  solved {solved} questions in {elapsed:.1f} s wall time ({solved / elapsed:.3f} questions/s, "
              f"concurrency {args.concurrency})")
    print(f"wrote {setup.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
