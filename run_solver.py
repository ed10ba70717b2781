"""Real-time LiveMind solver on MMLU-Pro (paper §4.1; v1 ``run_solver.py`` protocol).

Each question is typed by a simulated user (0.25 s per character); with ``--method
livemind`` (or the paper's flag, its alias) the model acts on every arrived sentence and
answers once the options are typed, with ``--method cot`` (the default) the
chain-of-thought baseline answers the complete question, and any other registered method
(``--method predgen``, docs/methods.md) runs on the same typed input and clock.  Writes the v1 record
list to ``--output_file`` (journaled per question; see ``live_mind/runfiles.py``).

``--timing PROFILE`` charges each call its modelled time from a token-cost profile
instead of its measured wall time (docs/timing.md); with a profile, ``--concurrency N``
keeps N questions in flight, each sending its next call as soon as its previous one
returns (``live_mind/concurrency.py``), and each call's cached prompt tokens are the
question's own modelled cache (``live_mind/cachemodel.py``).
"""

from __future__ import annotations

import sys

from live_mind.commands.run import main, parse_args  # noqa: F401 - parse_args: the tests build the solver's flags with it

if __name__ == "__main__":
    sys.exit(main())
