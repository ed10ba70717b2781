"""Batched LiveMind solver on MMLU-Pro (paper §4.3; v1 ``run_batch_solver.py`` protocol).

A thin wrapper: the code and the whole description are in ``live_mind/commands/batch.py``
(``live-mind batch``, the same flags; ``--help`` prints them).
"""

from __future__ import annotations

import sys

from live_mind.commands.batch import main

if __name__ == "__main__":
    sys.exit(main())
