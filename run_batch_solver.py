"""Batched LiveMind solver on MMLU-Pro (paper §4.3; v1 ``run_batch_solver.py`` protocol).

Questions are sorted by sentence count and solved ``--batch_size`` at a time in
lockstep; the final response's completion tokens stand in for latency.  With
``--method cot`` (the default) the batched CoT baseline runs.  Output: the v1 record list, journaled
after every batch.
"""

from __future__ import annotations

import sys

from live_mind.commands.batch import main

if __name__ == "__main__":
    sys.exit(main())
