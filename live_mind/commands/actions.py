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

import argparse
from pathlib import Path
from typing import Iterator

from live_mind.analysis.actions import action_tables
from live_mind.analysis.cli import add_common_arguments, describe, figure_prefix, output_dir, script_main
from live_mind.analysis.tables import load_runs


def analyze(args: argparse.Namespace) -> Iterator[Path]:
    runs = load_runs(args.files)
    out = output_dir(args.files, args.out_dir)
    tables = action_tables(runs, assume_kept_last=args.assume_kept_last, wait_tokens=args.wait_tokens or None)
    for run, unpositioned, missing, cancelled, by_rule in zip(runs, tables.unpositioned, tables.missing,
                                                              tables.cancelled, tables.wait_rule):
        line = describe(run)
        if by_rule:
            line += (f"; v1 wait rule applied to {by_rule} with kept actions only (a call with {args.wait_tokens}"
                     " completion tokens counts as a wait; counts checked)")
        if unpositioned:
            line += (f"; {unpositioned} with kept actions only, left out of actions_per_step.csv"
                     " (see --assume_kept_last)")
        if missing:
            line += f"; {missing} without action information, left out"
        if cancelled:
            line += f"; {cancelled} cancelled inference calls, left out"
        print(line)
    print(tables.per_step.format(1))
    yield tables.per_step.write_csv(out / "actions_per_step.csv")
    yield tables.per_len.write_csv(out / "actions_per_len.csv")
    if args.no_figures:
        return
    if not any(row[0] != "All" for row in tables.per_step.rows):
        print("no per-step information: actions_per_step.png not drawn")
        return
    from live_mind.analysis.figures import action_figure

    yield from action_figure(tables.per_step, [r.name for r in runs], out / "actions_per_step.png",
                             res_dir=args.res, prefix=figure_prefix(runs))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--assume_kept_last", "--assume-kept-last", action="store_true",
                        help="v1 kept-action files: place waits first, kept actions at the last steps")
    parser.add_argument("--wait_tokens", "--wait-tokens", type=int, default=4, metavar="N",
                        help="v1 kept-action files: a call with N completion tokens was a wait (default 4; 0: off)")


def main(argv: list[str] | None = None) -> int:
    return script_main(argv, __doc__, analyze, add_arguments)

