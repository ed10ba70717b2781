"""Headline numbers of a LiveMind run against its baseline, side by side.

Usage: ``python compare_runs.py BASE.json LIVEMIND.json [--metric auto|latency|tokens]``

Prints and writes ``comparison.csv`` (rows: ``all``, then each category, then each
length, in the baseline's first-seen order) with ``Group, Key, Total, Base Accuracy,
LiveMind Accuracy, Accuracy Diff, Base <M>, LiveMind <M>, <M> Reduction``:

* accuracy in percent, its difference in points (LiveMind - baseline);
* ``<M>`` is mean latency (``time_info.latency``, seconds) when both files have
  ``time_info``, else mean completion tokens of the final call (``--metric`` forces
  one); the reduction is ``100 * (base - livemind) / base`` percent.

Beside the measured latency it reports the latency *modelled* under token-cost timing
profiles (``live_mind/analysis/remodel.py``: every call re-charged from its tokens), for each
packaged profile -- the local model's and the paper's hardware -- or the ``--profile``
names given (``--profiles FILE`` adds a user file): mean of each run, ratio LiveMind /
baseline and the reduction, printed and written to ``latency_modelled.csv``.

Also draws ``comparison_by_len.png`` (the metric by length for both runs).  Outputs go
into the working directory (``--out_dir`` overrides).  The two files must hold the
same questions.  Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

from live_mind.analysis.cli import add_output_arguments, compare_table, describe, figure_prefix, output_dir, script_main
from live_mind.analysis.remodel import modelled_rows
from live_mind.analysis.tables import AnalysisError, Table, latency, load_runs, mean_of
from live_mind.profiles import ProfileError, load_profiles


def analyze(args: argparse.Namespace) -> Iterator[Path]:
    runs = load_runs([args.base, args.live])
    out = output_dir([args.base, args.live], args.out_dir)
    table = compare_table(runs[0], runs[1], args.metric)
    for run in runs:
        print(describe(run))
    print(table.format())
    yield table.write_csv(out / "comparison.csv")
    modelled = modelled_table(runs[0], runs[1], args.profile, args.profiles)
    print("\nlatency by timing (mean seconds; measured = as the runs were timed):")
    print(modelled.format(3))
    yield modelled.write_csv(out / "latency_modelled.csv")
    if args.no_figures:
        return
    from live_mind.analysis.figures import length_figure

    label = table.header[-1].split()[0]  # Latency or Tokens
    by_len = Table(["Length", "Total", f"File 1 {label}", f"File 2 {label}"],
                   [[row[1], row[2], row[6], row[7]] for row in table.rows if row[0] == "length"])
    yield from length_figure(by_len, label, [f"baseline: {runs[0].name}", f"LiveMind: {runs[1].name}"],
                             out / "comparison_by_len.png",
                             ylabel="latency (s)" if label == "Latency" else "final-call completion tokens",
                             res_dir=args.res, prefix=figure_prefix(runs))


def modelled_table(base, live, names: list[str] | None, user_file: str | None) -> Table:  # noqa: ANN001
    """Measured and profile-modelled mean latency of both runs."""
    try:
        known = load_profiles(user_file)
    except ProfileError as exc:
        raise AnalysisError(str(exc)) from None
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise AnalysisError(f"unknown profile(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    chosen = [known[n] for n in names] if names else [known[n] for n in sorted(known)]
    mean = mean_of(latency)
    measured = tuple(mean(run, range(len(run.records))) if run.has(latency) else None for run in (base, live))
    return Table(["Timing", "Base Latency", "LiveMind Latency", "Ratio", "Latency Reduction", "Approximate (base / LiveMind)"],
                 modelled_rows(base.records, live.records, chosen, measured))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", metavar="BASE", help="baseline output file (e.g. the CoT run)")
    parser.add_argument("live", metavar="LIVEMIND", help="LiveMind output file")
    parser.add_argument("--metric", choices=("auto", "latency", "tokens"), default="auto",
                        help="auto: latency when both files have time_info, else final-call tokens")
    parser.add_argument("--profile", action="append", default=None, metavar="NAME",
                        help="timing profile to model latency under (repeatable; default: every known profile)")
    parser.add_argument("--profiles", default=None, metavar="FILE", help="TOML file of extra timing profiles")
    add_output_arguments(parser)


def main(argv: list[str] | None = None) -> int:
    return script_main(argv, __doc__, analyze, add_arguments)

