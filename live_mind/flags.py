"""One command-line parser for every script and benchmark: both flag spellings.

Every long flag is written with underscores (``--max_new_tokens``, as the paper's
scripts spell them) and also answers to hyphens (``--max-new-tokens``), so a user's
habit from other tools works too.  ``--no-FLAG`` of a boolean flag follows both
spellings the same way.  What each flag means is the same in every script: the shared
flags are defined once, in ``cli.py``.
"""

from __future__ import annotations

import argparse
from typing import Any


def spellings(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` plus the other spelling of each long flag (``_`` <-> ``-``), without repeats."""
    out = list(names)
    for name in names:
        if name.startswith("--"):
            body = name[2:]
            for other in (body.replace("_", "-"), body.replace("-", "_")):
                if "--" + other not in out:
                    out.append("--" + other)
    return tuple(out)


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose long flags take both ``_`` and ``-`` spellings;
    the first spelling given names the flag's value (``args.max_new_tokens``)."""

    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action:  # type: ignore[override]
        return super().add_argument(*spellings(names), **kwargs)
