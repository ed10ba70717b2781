"""Headline figures of several runs side by side, and where LiveMind's gain comes from.

Usage: ``python summarize_runs.py BASE.json RUN.json [RUN.json ...] [--profiles FILE]``

The first file is the baseline (usually the CoT run); any number of runs follow (LiveMind,
collaborative, another model's CoT).  Prints and writes (``live_mind/analysis/effect.py``):

* ``summary.csv`` -- per run: questions, accuracy with its 95 % Wilson interval, mean /
  p50 / p95 latency as timed and modelled from the run's tokens under the profiles its
  models' entries name (``timing = ...``; empty when they name none), mean final-answer
  tokens, final answers at the token limit, inference replies parsed, questions where the
  model acted (kept a non-wait action while the user typed);
* ``acted_waited.csv`` -- each LiveMind run's questions split into acted / waited, with the
  baseline's figures on the same questions;
* ``acted_waited.png`` -- the split as bars (modelled latency when there is one).

Outputs go into the working directory (``--out_dir`` overrides).  Exit status 2 on bad input.
"""

from __future__ import annotations

import sys

from live_mind.commands.summarize import main

if __name__ == "__main__":
    sys.exit(main())
