"""``live-mind``: the one installed command, with a subcommand for each script of the repository.

``live-mind SUBCOMMAND [flags...]`` runs that subcommand's ``main`` on the remaining
arguments; each is the ``main`` of a top-level script (``live-mind run`` is ``python
run_solver.py``: the same flags, output and exit status), and the scripts stay as thin
wrappers of these modules for checkouts that are not installed.  ``live-mind`` alone or
``live-mind --help`` lists the subcommands; an unknown one is a one-line error on stderr,
exit status 2.  ``live-mind SUBCOMMAND --help`` prints that subcommand's flags.
"""

from __future__ import annotations

import importlib
import sys
from contextlib import contextmanager
from typing import Callable, Iterator, NamedTuple

PROG = "live-mind"


class Command(NamedTuple):
    target: str
    """``module:function`` of its ``main(argv) -> int``, imported only when the subcommand runs
    (the solvers' imports reach torch; the listing should not wait for them)."""
    script: str
    """The top-level script that runs the same ``main`` (empty when there is none)."""
    summary: str
    """One line for the listing."""


COMMANDS: dict[str, Command] = {
    "run": Command("live_mind.commands.run:main", "run_solver.py",
                   "the real-time protocol (paper §4.1): a simulated user types each question"),
    "batch": Command("live_mind.commands.batch:main", "run_batch_solver.py",
                     "the batched protocol (paper §4.3): lockstep batches, final-call tokens as latency"),
    "live": Command("live_mind.commands.live:main", "live_session.py",
                    "a live session in the terminal: the model acts while you type"),
    "serve": Command("live_mind.serve.main:main", "serve.py",
                     "the session server: a WebSocket API and a web page"),
    "analyze": Command("live_mind.commands.analyze:main", "analyze_time_info.py",
                       "the paper's tables: accuracy and latency by category and question length"),
    "analyze-batched": Command("live_mind.commands.analyze:main_batched", "analyze_batched.py",
                               "the same tables for batched runs (final-call tokens)"),
    "actions": Command("live_mind.commands.actions:main", "analyze_actions.py",
                       "share of each action type per step and question length (Fig. 8)"),
    "compare": Command("live_mind.commands.compare:main", "compare_runs.py",
                       "a LiveMind run against its baseline: accuracy, latency measured and modelled"),
    "summarize": Command("live_mind.commands.summarize:main", "summarize_runs.py",
                         "several runs side by side, and where LiveMind's gain comes from"),
    "fit-profile": Command("live_mind.commands.fit:main", "fit_profile.py",
                           "fit a token-cost timing profile to finished runs"),
    "methods": Command("live_mind.commands:methods", "",
                       "the registered simultaneous-inference methods"),
}

def listing() -> str:
    """The usage line and one line per subcommand (``live-mind`` alone and ``--help``)."""
    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} SUBCOMMAND [flags...]    ({PROG} SUBCOMMAND --help: its flags)", "",
             "LiveMind: simultaneous inference of LLMs, reasoning while the user types (arXiv 2406.14319).", "",
             "subcommands:"]
    lines += [f"  {name:{width}s}  {command.summary}" + (f" ({command.script})" if command.script else "")
              for name, command in COMMANDS.items()]
    return "\n".join(lines)


def resolve(name: str) -> Callable[[list[str]], int]:
    """The ``main`` of subcommand ``name`` (a key of ``COMMANDS``), imported now."""
    module, _, function = COMMANDS[name].target.partition(":")
    return getattr(importlib.import_module(module), function)


@contextmanager
def program_name(name: str) -> Iterator[None]:
    """Run with ``sys.argv[0]`` set to ``name``: argparse names the program after it, so the
    subcommand's usage and error lines read ``live-mind run ...``, not ``live-mind ...``."""
    saved = list(sys.argv)
    sys.argv[:1] = [name]
    try:
        yield
    finally:
        sys.argv[:] = saved


def main(argv: list[str] | None = None) -> int:
    """``live-mind SUBCOMMAND [flags...]``: the subcommand's exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(listing())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"{PROG}: unknown subcommand {name!r}; choose from {', '.join(COMMANDS)} ({PROG} --help describes them)",
              file=sys.stderr)
        return 2
    run = resolve(name)
    with program_name(f"{PROG} {name}"):
        return run(rest)


def methods(argv: list[str] | None = None) -> int:
    """``live-mind methods``: the registered simultaneous-inference methods, from the method
    registry (``live_mind/methods/registry.py``)."""
    from live_mind import flags
    from live_mind.methods.registry import describe

    flags.ArgumentParser(description="List the registered simultaneous-inference methods.").parse_args(argv)
    print(describe().rstrip("\n"))
    return 0
