"""The toolkit's cache folder: exported Hugging Face folders (``export.py``) and assembled
part-package GGUF files (``parts.py``) live here, never in the working tree."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "LIVEMIND_CACHE"
"""Environment variable naming the toolkit's cache folder."""

DEFAULT_CACHE = Path("~/.cache/live_mind")


def cache_dir() -> Path:
    """The toolkit's cache folder (``$LIVEMIND_CACHE`` or ``~/.cache/live_mind``)."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()
