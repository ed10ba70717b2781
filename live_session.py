"""Live LiveMind session in the terminal.

A thin wrapper: the code and the whole description are in ``live_mind/commands/live.py``
(``live-mind live``, the same flags; ``--help`` prints them).
"""

from __future__ import annotations

import sys

from live_mind.commands.live import main

if __name__ == "__main__":
    sys.exit(main())
