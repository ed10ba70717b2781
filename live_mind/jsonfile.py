"""Reading a whole JSON file with a one-line error that says where it breaks.

A run file cut short (a copy that stopped, a disk that filled, a crash while writing
without the journal's protection) must not become a traceback in an analysis script:
``read_json`` names the file and the byte offset where the JSON stops making sense, and
says whether the file simply ends too early (torn or truncated) or is damaged there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class JSONFileError(ValueError):
    """A JSON file that cannot be read (one-line message naming file and byte offset)."""


def decode_error_message(path: str | Path, text: str, exc: json.JSONDecodeError) -> str:
    """One line for a JSON decode error in ``text`` (the contents of ``path``)."""
    offset = len(text[:exc.pos].encode("utf-8"))
    size = len(text.encode("utf-8"))
    if not text[exc.pos:].strip():
        return f"{path}: not valid JSON: truncated, the file ends at byte {size} in the middle of the data (torn or cut short)"
    return f"{path}: not valid JSON: damaged at byte {offset} of {size} ({exc.msg})"


def read_json(path: str | Path) -> Any:
    """The parsed contents of ``path``; ``FileNotFoundError`` and other ``OSError``s
    propagate, anything unparseable is a ``JSONFileError``."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONFileError(decode_error_message(path, text, exc)) from None
