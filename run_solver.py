"""Real-time LiveMind solver on MMLU-Pro (paper §4.1; v1 ``run_solver.py`` protocol).

A thin wrapper: the code and the whole description are in ``live_mind/commands/run.py``
(``live-mind run``, the same flags; ``--help`` prints them).
"""

from __future__ import annotations

import sys

from live_mind.commands.run import main, parse_args  # noqa: F401 - parse_args: the tests build the solver's flags with it

if __name__ == "__main__":
    sys.exit(main())
