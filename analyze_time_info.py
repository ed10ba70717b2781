"""Accuracy, latency and generation time per category and per question length.

Usage: ``python analyze_time_info.py FILE [FILE ...] [--compare] [--res res/]``

Reads real-time solver outputs (records with ``time_info``) -- ours or the original
authors' -- and writes, in their layout (one column group per file):

* ``timeinfo_by_category.csv``: ``Category, Total, File i Accuracy, File i Latency,
  File i Gen Time``; first row ``All``, then categories in first-seen order;
* ``timeinfo_by_len.csv``: the same per length (Punkt sentences + 1), first-seen order;
* ``latency_by_len.png``: mean latency by length, one line per file.

Accuracy is in percent; latency is ``time_info.latency`` (seconds from the end of the
question to the answer) and gen time ``time_info.total_gen_time``.  Outputs go beside
a single file, else into the working directory (``--out-dir`` overrides).  Several
files must hold the same questions.  ``--compare`` (two files: baseline, LiveMind)
also writes ``comparison.csv`` as ``compare_runs.py`` does.  Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterator

from live_mind.analysis.cli import add_common_arguments, length_report, run_cli
from live_mind.analysis.tables import time_info_tables


def analyze(args: argparse.Namespace) -> Iterator[Path]:
    return length_report(args, time_info_tables, "latency", "Latency", "latency_by_len.png", "latency (s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    parser.add_argument("--compare", action="store_true",
                        help="with two files (baseline, LiveMind): also print and write comparison.csv")
    args = parser.parse_args(argv)
    return run_cli(lambda: analyze(args))


if __name__ == "__main__":
    sys.exit(main())
