"""Shared test setup: import the package from the repo root; locate ../shared data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"
"""Read-only shared data (MMLU-Pro 1,400 questions, the published v1 run); may be absent."""


def shared_path(rel: str) -> Path:
    """``SHARED / rel``, or skip the calling test when it is not there."""
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (expected next to the repository)")
    return path
