"""Fit a token-cost timing profile from run files (docs/timing.md).

Usage: ``python fit_profile.py RUN.json [RUN.json ...] --name NAME``

Reads every call with usage and seconds -- each step of this toolkit's records, or the
final call of each record with ``overhead_time`` 0 in the authors' v1 files (there the
latency is that call's time) -- fits ``seconds = fixed + uncached·(prompt - cached) +
cached·cached_tokens + completion·completion_tokens`` by least squares, and prints the
coefficients, R², the median and p90 relative error, and the ``[profiles.NAME]`` entry to
paste into a profiles file (``--profiles FILE``).  Exit status 2 on bad input, and on
runs whose step seconds are batch wall times (batched solver, ``--concurrency`` > 1)
unless ``--allow_batch_times``.
"""

from __future__ import annotations

import argparse
import sys

from live_mind import flags
from live_mind.analysis.fit import FitError, fit_files


def main(argv: list[str] | None = None) -> int:
    parser = flags.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN.json", help="output files (all.json) with per-call usage")
    parser.add_argument("--name", required=True, help="profile name for the TOML entry")
    parser.add_argument("--cached", type=float, default=0.0,
                        help="seconds per cached prompt token when the runs report no cached tokens (default 0)")
    parser.add_argument("--description", default="", help="one line saved in the entry")
    parser.add_argument("--machine", default="", help="the machine the runs were measured on, saved in the entry")
    parser.add_argument("--relative", action="store_true",
                        help="least relative squares with the fixed cost kept >= 0 (as benchmarks/calibrate.py): short calls "
                             "count as much as long ones; steadier on runs measured on a busy machine")
    parser.add_argument("--nonnegative", action="store_true",
                        help="keep every coefficient >= 0 (a fit on noisy calls can give a cached or fixed cost below 0)")
    parser.add_argument("--allow_batch_times", action="store_true",
                        help="fit runs whose step seconds are batch wall times (batched solver, --concurrency > 1) anyway")
    args = parser.parse_args(argv)
    if not args.name.replace("-", "").replace("_", "").replace(".", "").isalnum() or args.name in ("measured", "model"):
        print(f"error: --name must be letters, digits, '-', '_' or '.' (and not 'measured' or 'model'): {args.name!r}", file=sys.stderr)
        return 2
    try:
        fitted = fit_files(args.runs, args.name, allow_batch_times=args.allow_batch_times, cached_default=args.cached,
                           description=args.description, machine=args.machine,
                           relative=args.relative, nonnegative_fixed=args.relative, nonnegative=args.nonnegative)
    except FitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(fitted.report())
    print()
    print(fitted.profile.toml_entry(), end="")
    return 0

