"""Reading the toolkit's TOML configuration files (models, cost profiles) with one-line errors.

Both configuration files are hand-edited, so every way reading one can fail -- missing,
a folder, not UTF-8, bad TOML -- becomes one line naming the file, raised as the
caller's own error type (the scripts turn it into exit code 2 before any model loads).
"""

from __future__ import annotations

import os
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]


def read_toml(path: str | os.PathLike[str], error: type[Exception], what: str) -> dict[str, Any]:
    """The parsed file; ``error(message)`` on any failure, ``what`` naming the file's kind."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise error(f"{what} is a directory: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: cannot read {what}: invalid TOML: {str(exc).splitlines()[0]}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: cannot read {what}: not a UTF-8 text file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
