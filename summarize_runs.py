"""Headline figures of several runs side by side, and where LiveMind's gain comes from.

A thin wrapper: the code and the whole description are in ``live_mind/commands/summarize.py``
(``live-mind summarize``, the same flags; ``--help`` prints them).
"""

from __future__ import annotations

import sys

from live_mind.commands.summarize import main

if __name__ == "__main__":
    sys.exit(main())
