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

import sys

from live_mind.commands.analyze import main

if __name__ == "__main__":
    sys.exit(main())
