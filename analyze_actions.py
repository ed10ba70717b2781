"""Share of each action type per inference step and per question length (Fig. 8).

A thin wrapper: the code and the whole description are in ``live_mind/commands/actions.py``
(``live-mind actions``, the same flags; ``--help`` prints them).
"""

from __future__ import annotations

import sys

from live_mind.commands.actions import main

if __name__ == "__main__":
    sys.exit(main())
