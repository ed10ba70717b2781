"""Accuracy and final-call tokens per category and per question length.

A thin wrapper: the code and the whole description are in ``live_mind/commands/analyze.py``
(``live-mind analyze-batched``, the same flags; ``--help`` prints them).
"""

from __future__ import annotations

import sys

from live_mind.commands.analyze import main_batched as main

if __name__ == "__main__":
    sys.exit(main())
