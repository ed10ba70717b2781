"""Per-question affinity keys (``models/affinity.py``) reach the server.

The solver runs as a subprocess against the stub OpenAI-compatible server
(``fixtures/stub_openai_server.py``), which logs every request's headers and body: with
``affinity_header`` / ``affinity_field`` in the entry every call carries its question's
id, on the synchronous path and with several questions in flight (the async path);
without them nothing is added, and the records are the same either way.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import require_module

from live_mind.models.affinity import affinity_args, check_names

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "tests" / "fixtures" / "stub_openai_server.py"
MEASURED = ("seconds", "request_seconds", "config_id")  # config_id: the entry differs by the key names


def test_affinity_args():
    assert affinity_args("q7", "X-Session-ID", None) == ({"X-Session-ID": "q7"}, {})
    assert affinity_args("q7", None, "user") == ({}, {"user": "q7"})
    assert affinity_args("q7", "X-Session-ID", "user") == ({"X-Session-ID": "q7"}, {"user": "q7"})
    assert affinity_args(None, "X-Session-ID", "user") == ({}, {})
    assert affinity_args("q7", None, None) == ({}, {})


@pytest.mark.parametrize("header, field", [("X Session", None), ("", None), ("a:b", None), (None, "")])
def test_bad_names_are_refused(header, field):
    with pytest.raises(ValueError):
        check_names(header, field)


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in MEASURED}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


@pytest.fixture
def stub(tmp_path):
    require_module("openai", "openai is not installed (pip install '.[openai]')")
    log = tmp_path / "requests.jsonl"
    env = {"STUB_REQUEST_LOG": str(log), "PATH": "/usr/bin:/bin"}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(STUB), str(port)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield port, log
    finally:
        proc.kill()
        proc.wait()


def _run(tmp_path: Path, port: int, name: str, keys: str, extra: list[str]) -> list[dict]:
    models = tmp_path / f"{name}.toml"
    models.write_text(f"""
[models.stub]
backend = "openai"
description = "stub server"
base_url = "http://127.0.0.1:{port}/v1"
model = "stub-model"
max_concurrency = 4
{keys}
""")
    out = tmp_path / f"{name}.json"
    cmd = [sys.executable, str(ROOT / "run_solver.py"), "--models", str(models), "--model", "stub", "--use_lm",
           "--timing", "paper-llama-3-8b", "--output_file", str(out), *extra]
    env = {"PYTHONPATH": str(ROOT), "NO_PROXY": "127.0.0.1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text(encoding="utf-8"))


def _requests(log: Path) -> list[dict]:
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("extra", [[], ["--concurrency", "4"]], ids=["sequential", "concurrent"])
def test_every_call_carries_its_question_id_and_nothing_else_changes(tmp_path, stub, extra):
    port, log = stub
    plain = _run(tmp_path, port, "plain", "", extra)
    sent = _requests(log)
    assert sent and not [r for r in sent if "x-session-id" in {k.lower() for k in r["headers"]} or "user" in r["body"]]

    keyed = _run(tmp_path, port, "keyed", 'affinity_header = "X-Session-ID"\naffinity_field = "user"', extra)
    sent = _requests(log)
    assert _strip(keyed) == _strip(plain), "the key changes nothing in the records"
    headers = [{k.lower(): v for k, v in r["headers"].items()}["x-session-id"] for r in sent]
    assert headers == [r["body"]["user"] for r in sent], "header and body field carry the same key"
    assert Counter(headers) == {str(r["question_id"]): len(r["steps"]) for r in keyed}, \
        "every call of a question, and only its calls, carry its id"
