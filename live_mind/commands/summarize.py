"""Headline figures of several runs side by side, and where LiveMind's gain comes from.

Usage: ``python summarize_runs.py BASE.json RUN.json [RUN.json ...] [--profiles FILE]``

The first file is the baseline (usually the CoT run); any number of runs follow (LiveMind,
collaborative, another model's CoT).  Prints and writes (``live_mind/analysis/effect.py``):

* ``summary.csv`` -- per run: questions, accuracy with its 95 % Wilson interval, mean /
  p50 / p95 latency as timed and modelled from the run's tokens under the profiles its
  models' entries name (``timing = ...``; empty when they name none), mean final-answer
  tokens, final answers at the token limit, inference replies parsed, questions where the
  model acted (kept a non-wait action while the user typed);
* ``acted_waited.csv`` -- each LiveMind run's questions split into acted / waited, with the
  baseline's figures on the same questions;
* ``acted_waited.png`` -- the split as bars (modelled latency when there is one);
* ``final_length.csv`` / ``.png`` -- the same questions split by the final answer's length
  (``--short_final N`` tokens, default 100): *concluded* from what was inferred while the
  user typed, or *solved again* -- what tells when the model acted on every question.

``--common`` keeps only the questions every file holds (runs stopped early, resumed
journals merged, other selections); without it each run counts all its records.

Outputs go into the working directory (``--out_dir`` overrides).  Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
from typing import Iterator

from live_mind.analysis.cli import add_common_arguments, figure_prefix, output_dir, script_main
from live_mind.analysis.effect import SHORT_FINAL, acted_waited_table, common_questions, final_length_table, is_livemind, summary_table
from live_mind.analysis.tables import load_runs


def analyze(args: argparse.Namespace) -> Iterator:
    runs = load_runs(args.files)
    if args.common:
        runs = common_questions(runs)
        print(f"{len(runs[0].records)} questions common to all {len(runs)} runs")
    out = output_dir(args.files, args.out_dir)
    summary = summary_table(runs, args.profiles)
    print(summary.format(2))
    yield summary.write_csv(out / "summary.csv")
    lives = [run for run in runs[1:] if is_livemind(run)] or [run for run in runs if is_livemind(run)]
    if not lives:
        return
    base = runs[0] if not is_livemind(runs[0]) else None
    split = acted_waited_table(base, lives, args.profiles)
    print("\nLiveMind questions by what the model did while the user typed:")
    print(split.format(2))
    yield split.write_csv(out / "acted_waited.csv")
    lengths = final_length_table(base, lives, args.short_final, args.profiles)
    print("\nLiveMind questions by the final answer's length:")
    print(lengths.format(2))
    yield lengths.write_csv(out / "final_length.csv")
    if not args.no_figures:
        from live_mind.analysis.figures import FINAL_LENGTH_TITLE, acted_waited_figure

        yield from acted_waited_figure(split, out / "acted_waited.png", res_dir=args.res, prefix=figure_prefix(runs))
        yield from acted_waited_figure(lengths, out / "final_length.png", res_dir=args.res, prefix=figure_prefix(runs),
                                       title=FINAL_LENGTH_TITLE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "output files (all.json): the baseline first, then the runs to compare")
    parser.add_argument("--profiles", default=None, metavar="FILE", help="TOML file of extra timing profiles")
    parser.add_argument("--common", action="store_true",
                        help="compare only the questions (question_id) every file holds")
    parser.add_argument("--short_final", "--short-final", type=_positive, default=SHORT_FINAL, metavar="N",
                        help=f"final answers of at most N tokens count as concluded (default {SHORT_FINAL})")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive number of tokens")
    return value


def main(argv: list[str] | None = None) -> int:
    return script_main(argv, __doc__, analyze, add_arguments)

