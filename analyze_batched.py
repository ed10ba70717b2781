"""Accuracy and final-call tokens per category and per question length (issue 3).

Usage: ``python analyze_batched.py FILE [FILE ...] [--compare] [--res res/]``

For batched solver outputs, which have no wall-clock ``time_info``: the cost measure
is the mean number of completion tokens of the final (output) call -- the last entry
of ``usage.completion_tokens`` -- which is what the user waits for after typing.
Writes, in the layout of ``analyze_time_info.py`` (one column group per file):

* ``timeinfo_by_category.csv``: ``Category, Total, File i Accuracy, File i Tokens``;
* ``timeinfo_by_len.csv``: the same per length (Punkt sentences + 1);
* ``tokens_by_len.png``: mean final-call tokens by length, one line per file.

Accuracy is in percent.  Outputs go beside a single file, else into the working
directory (``--out-dir`` overrides).  Several files must hold the same questions.
``--compare`` (two files: baseline, LiveMind) also writes ``comparison.csv`` with the
token reduction.  Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterator

from live_mind.analysis import (AnalysisError, add_common_arguments, batched_tables, compare_table, describe,
                                figure_prefix, load_runs, output_dir, run_cli)


def analyze(args: argparse.Namespace) -> Iterator[Path]:
    if args.compare and len(args.files) != 2:
        raise AnalysisError("--compare needs exactly two files: BASELINE LIVEMIND")
    runs = load_runs(args.files)
    out = output_dir(args.files, args.out_dir)
    by_category, by_len = batched_tables(runs)
    comparison = compare_table(runs[0], runs[1], "tokens") if args.compare else None
    for run in runs:
        print(describe(run))
    print(by_category.format())
    yield by_category.write_csv(out / "timeinfo_by_category.csv")
    yield by_len.write_csv(out / "timeinfo_by_len.csv")
    if comparison is not None:
        print(comparison.format())
        yield comparison.write_csv(out / "comparison.csv")
    if not args.no_figures:
        from live_mind.figures import length_figure

        yield from length_figure(by_len, "Tokens", [r.name for r in runs], out / "tokens_by_len.png",
                                 ylabel="final-call completion tokens", res_dir=args.res,
                                 prefix=figure_prefix(runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--compare", action="store_true",
                        help="with two files (baseline, LiveMind): also print and write comparison.csv")
    args = parser.parse_args(argv)
    return run_cli(lambda: analyze(args))


if __name__ == "__main__":
    sys.exit(main())
