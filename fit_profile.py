"""Fit a token-cost timing profile from run files (docs/timing.md).

A thin wrapper: the code and the whole description are in ``live_mind/commands/fit.py``
(``live-mind fit-profile``, the same flags; ``--help`` prints them).
"""

from __future__ import annotations

import sys

from live_mind.commands.fit import main

if __name__ == "__main__":
    sys.exit(main())
