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
* ``acted_waited.png`` -- the split as bars (modelled latency when there is one).

Outputs go into the working directory (``--out_dir`` overrides).  Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
from typing import Iterator

from live_mind.analysis.cli import add_common_arguments, figure_prefix, output_dir, script_main
from live_mind.analysis.effect import acted_waited_table, is_livemind, summary_table
from live_mind.analysis.tables import load_runs


def analyze(args: argparse.Namespace) -> Iterator:
    runs = load_runs(args.files)
    out = output_dir(args.files, args.out_dir)
    summary = summary_table(runs, args.profiles)
    print(summary.format(2))
    yield summary.write_csv(out / "summary.csv")
    lives = [run for run in runs[1:] if is_livemind(run)] or [run for run in runs if is_livemind(run)]
    if not lives:
        return
    split = acted_waited_table(runs[0] if not is_livemind(runs[0]) else None, lives, args.profiles)
    print("\nLiveMind questions by what the model did while the user typed:")
    print(split.format(2))
    yield split.write_csv(out / "acted_waited.csv")
    if not args.no_figures:
        from live_mind.analysis.figures import acted_waited_figure

        yield from acted_waited_figure(split, out / "acted_waited.png", res_dir=args.res, prefix=figure_prefix(runs))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "output files (all.json): the baseline first, then the runs to compare")
    parser.add_argument("--profiles", default=None, metavar="FILE", help="TOML file of extra timing profiles")


def main(argv: list[str] | None = None) -> int:
    return script_main(argv, __doc__, analyze, add_arguments)

