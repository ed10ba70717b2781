"""Headline numbers of a LiveMind run against its baseline, side by side.

A thin wrapper: the code and the whole description are in ``live_mind/commands/compare.py``
(``live-mind compare``, the same flags; ``--help`` prints them).
"""

from __future__ import annotations

import sys

from live_mind.commands.compare import main

if __name__ == "__main__":
    sys.exit(main())
