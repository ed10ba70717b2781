"""Share of each action type per inference step and per question length (Fig. 8).

Usage: ``python analyze_actions.py FILE [FILE ...] [--assume_kept_last] [--res res/]``

Writes (shares in percent of a file's inference calls; with several files the columns are
metric-major, ``File 1 Calls, File 2 Calls, File 1 Background, ...``, as in v1):

* ``actions_per_step.csv``: ``Step, File i Calls, File i Background, File i Inference,
  File i Hypothesize, File i Wait, File i Unparsed``; first row ``All``, then steps
  1, 2, ... (step k = the k-th inference call of a question);
* ``actions_per_len.csv``: ``Length, Total`` (questions) then the same column group,
  per length (Punkt sentences + 1) in first-seen order;
* ``actions_per_step.png``: stacked bars per step, one panel per file (paper Fig. 8).

Action types come from the records' ``steps``; inference calls cancelled when the
options arrived produced no action and are left out.  Files in the original v1 batched layout
keep only the non-wait actions (``action``: ``["action NAME. content", ...]``); their
inference calls number ``len(usage.completion_tokens) - 1`` and the missing ones were
waits.  Where the waits happened is read with the v1 analysis rule: a call with 4
completion tokens was a wait (``--wait_tokens`` changes the count, 0 turns the rule
off).  The rule is used for a record only when its counts add up (calls that are not
waits = kept actions), and the printout says for how many records it was applied.
Other such records count in ``actions_per_len.csv`` (exact) but are left out of
``actions_per_step.csv`` (the printout says how many).  ``--assume_kept_last`` instead
places the waits first and the kept actions at the last steps -- an assumption, not a
measurement.  Kept strings that do not start with a known ``action NAME`` count as
``unparsed``.  Several files must hold the same questions.  Exit status 2 on bad input.
"""

from __future__ import annotations

import sys

from live_mind.commands.actions import main

if __name__ == "__main__":
    sys.exit(main())
