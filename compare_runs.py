"""Headline numbers of a LiveMind run against its baseline, side by side.

Usage: ``python compare_runs.py BASE.json LIVEMIND.json [--metric auto|latency|tokens]``

Prints and writes ``comparison.csv`` (rows: ``all``, then each category, then each
length, in the baseline's first-seen order) with ``Group, Key, Total, Base Accuracy,
LiveMind Accuracy, Accuracy Diff, Base <M>, LiveMind <M>, <M> Reduction``:

* accuracy in percent, its difference in points (LiveMind - baseline);
* ``<M>`` is mean latency (``time_info.latency``, seconds) when both files have
  ``time_info``, else mean completion tokens of the final call (``--metric`` forces
  one); the reduction is ``100 * (base - livemind) / base`` percent.

Beside the measured latency it reports the latency *modelled* under token-cost timing
profiles (``live_mind/analysis/remodel.py``: every call re-charged from its tokens), for each
packaged profile -- the local model's and the paper's hardware -- or the ``--profile``
names given (``--profiles FILE`` adds a user file): mean of each run, ratio LiveMind /
baseline and the reduction, printed and written to ``latency_modelled.csv``.

Also draws ``comparison_by_len.png`` (the metric by length for both runs).  Outputs go
into the working directory (``--out_dir`` overrides).  The two files must hold the
same questions.  Exit status 2 on bad input.
"""

from __future__ import annotations

import sys

from live_mind.commands.compare import main

if __name__ == "__main__":
    sys.exit(main())
