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
a single file, else into the working directory (``--out_dir`` overrides).  Several
files must hold the same questions.  ``--compare`` (two files: baseline, LiveMind)
also writes ``comparison.csv`` as ``compare_runs.py`` does.  Exit status 2 on bad input.
"""

from __future__ import annotations

from live_mind.analysis.cli import length_main
from live_mind.analysis.tables import batched_tables, time_info_tables

# ``live-mind analyze-batched`` / ``analyze_batched.py``: the same report for batched runs, whose help text
# (the script's docstring) is kept here beside the real-time one.
BATCHED_DOC = """Accuracy and final-call tokens per category and per question length.

Usage: ``python analyze_batched.py FILE [FILE ...] [--compare] [--res res/]``

For batched solver outputs, which have no wall-clock ``time_info``: the cost measure
is the mean number of completion tokens of the final (output) call -- the last entry
of ``usage.completion_tokens`` -- which is what the user waits for after typing.
Writes, in the layout of ``analyze_time_info.py`` (one column group per file):

* ``timeinfo_by_category.csv``: ``Category, Total, File i Accuracy, File i Tokens``;
* ``timeinfo_by_len.csv``: the same per length (Punkt sentences + 1);
* ``tokens_by_len.png``: mean final-call tokens by length, one line per file.

Accuracy is in percent.  Outputs go beside a single file, else into the working
directory (``--out_dir`` overrides).  Several files must hold the same questions.
``--compare`` (two files: baseline, LiveMind) also writes ``comparison.csv`` with the
token reduction.  Exit status 2 on bad input.
"""


def main(argv: list[str] | None = None) -> int:
    return length_main(argv, __doc__, time_info_tables, "latency", "Latency", "latency_by_len.png", "latency (s)")


def main_batched(argv: list[str] | None = None) -> int:
    return length_main(argv, BATCHED_DOC, batched_tables, "tokens", "Tokens", "tokens_by_len.png",
                       "final-call completion tokens")
