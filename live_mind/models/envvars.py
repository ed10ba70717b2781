"""``${VAR}`` references in model configuration values (``registry.py``).

``"${VAR}"`` and ``"${VAR:-default}"`` inside strings (also inside lists and tables)
read the environment at check and build time: checkpoint paths, server URLs.
Variables whose names look secret are never substituted into what a run saves.
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

_SECRET_VAR = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|AUTH)", re.I)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def referenced_variables(value: Any) -> list[tuple[str, str | None]]:
    """``(VAR, default)`` for every ``${VAR}`` / ``${VAR:-default}`` inside ``value``."""
    if isinstance(value, str):
        return [(m.group(1), m.group(2)) for m in _VAR.finditer(value)]
    if isinstance(value, dict):
        return [ref for item in value.values() for ref in referenced_variables(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in referenced_variables(item)]
    return []


def expand(value: Any, env: Mapping[str, str] | None = None, redact: bool = False) -> Any:
    """``value`` with ``${VAR}`` references replaced from ``env`` (default ``os.environ``).

    Unset variables without a default stay as written.  With ``redact``, variables whose
    names look secret (``*KEY*``, ``*TOKEN*``...) are never substituted.
    """
    env = os.environ if env is None else env

    def substitute(match: re.Match[str]) -> str:
        var, default = match.group(1), match.group(2)
        if redact and _SECRET_VAR.search(var):
            return match.group(0)
        if env.get(var):
            return env[var]
        return default if default is not None else match.group(0)

    if isinstance(value, str):
        return _VAR.sub(substitute, value)
    if isinstance(value, dict):
        return {k: expand(v, env, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, env, redact) for v in value]
    return value
