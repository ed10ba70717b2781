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

import sys

from live_mind.commands.fit import main

if __name__ == "__main__":
    sys.exit(main())
