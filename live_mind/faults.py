"""Faults outside a run, as the solver scripts meet them (see docs/reliability.md).

Two kinds of failure reach a run.  A question-level failure (a prompt over the context,
a request the model rejects, an empty question) is the question's: it becomes a record
with an ``error`` and the run goes on.  An infrastructure failure (the backend away, a
dead engine, a full disk) is not: the outage guard (``models/outage.py``) waits for the
backend for up to ``--max_outage`` seconds, and if it stays away -- or a journal write
fails -- the run stops like a Ctrl-C does: everything finished is saved, one line names
the fault and the command that resumes, exit code 75.  ``--resume --retry_failed``
solves again the questions recorded with an error.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any, Callable

from .models.base import OutageExceeded, report_status
from .models.outage import DEFAULT_MAX_OUTAGE

EXIT_OK, EXIT_USAGE, EXIT_TEMPFAIL, EXIT_INTERRUPTED = 0, 2, 75, 130
"""Exit codes: done; bad input; stopped by a fault outside the run (backend away longer
than ``--max_outage``, a failed write), resumable; stopped by Ctrl-C, resumable."""


def add_max_outage(parser: argparse.ArgumentParser, past_it: str) -> None:
    """``--max_outage`` (every long-running script); ``past_it`` says what the script does
    once the backend has been away that long."""
    parser.add_argument("--max_outage", type=float, default=DEFAULT_MAX_OUTAGE, metavar="SECONDS",
                        help="how long the backend may be unavailable (connection refused, timeouts, HTTP 5xx/429, "
                             f"a dead engine) while calls are retried with backoff (default {DEFAULT_MAX_OUTAGE:g}); "
                             f"past it {past_it}")


def add_fault_args(parser: argparse.ArgumentParser) -> None:
    """``--max_outage`` and ``--retry_failed`` (both solvers)."""
    add_max_outage(parser, "the run stops resumably with exit code 75")
    parser.add_argument("--retry_failed", action="store_true",
                        help="with --resume: solve again the questions recorded with an error")


def problem(run: Any) -> str | None:
    """What is wrong with the fault settings of a ``runconfig.RunConfig``, as a one-line
    message (``None``: nothing)."""
    if run.max_outage < 0:
        return "--max_outage must be >= 0 (seconds)"
    if run.retry_failed and not run.resume:
        return "--retry_failed needs --resume (it re-runs the failed questions of an existing run)"
    return None


def show_outages(loaded: dict[str, Any], show: Callable[[str], None]) -> None:
    """Let the models (their outage guards) report their waiting status through ``show``
    (the progress bar's text)."""
    for model in loaded.values():
        report_status(model, lambda text: show(text or "backend is back"))


def resume_command(argv: list[str] | None = None) -> str:
    """The command line that resumes this run: the same one, with ``--resume`` and
    without ``--overwrite``."""
    argv = list(sys.argv if argv is None else argv)
    args = [a for a in argv[1:] if a != "--overwrite"]
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join([Path(sys.executable).name, argv[0], *args])


def stopped_by_fault(exc: BaseException, output: Path, saved: int, total: int) -> int:
    """Report a run stopped by a fault outside it on one line -- what failed, what is
    saved, how to resume -- and return exit code 75."""
    what = "backend unavailable" if isinstance(exc, OutageExceeded) else "write failed"
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    print(f"error: {what}: {reason}; stopped after {saved}/{total} questions, saved in "
          f"{output.with_suffix('.jsonl')}. Resume with: {resume_command()}", file=sys.stderr)
    return EXIT_TEMPFAIL
