"""Accuracy and final-call tokens per category and per question length.

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

from __future__ import annotations

import sys

from live_mind.commands.analyze import main_batched as main

if __name__ == "__main__":
    sys.exit(main())
