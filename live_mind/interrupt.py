"""Stopping a solver run cleanly on Ctrl-C, the same way in both solvers.

The first Ctrl-C lets the current unit of work (a question, a batch) finish and be saved
in the journal, then the run stops and says how to resume; a second Ctrl-C aborts at
once.  Nothing is lost either way: the journal holds every finished question.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any


class GracefulStop:
    """Ctrl-C once: finish the current unit of work (a question, a batch), then stop with
    everything saved; Ctrl-C again aborts.  Use as ``with GracefulStop("question") as stop``
    and test ``stop.requested`` after each unit; the previous handler is restored on exit."""

    def __init__(self, unit: str) -> None:
        self.unit, self.requested, self._previous = unit, False, None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(f"\ninterrupt: finishing the current {self.unit}, then stopping (Ctrl-C again to abort)", file=sys.stderr)

    def __enter__(self) -> "GracefulStop":
        self._previous = signal.signal(signal.SIGINT, self)
        return self

    def __exit__(self, *exc: Any) -> None:
        signal.signal(signal.SIGINT, self._previous)


def stopped_early(stop: GracefulStop, done: int, total: int, output: Path) -> int | None:
    """After an interrupted run: the resume hint and exit code 130; None if the run ended."""
    if not (stop.requested and done < total):
        return None
    print(f"stopped after {done}/{total} questions; saved in {output.with_suffix('.jsonl')}. "
          f"Resume with the same command plus --resume.", file=sys.stderr)
    return 130
