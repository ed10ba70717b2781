"""Security basics: keys only from the environment and never written
out, no pickles, only the configured model files read.

* Keys: both solver scripts run against a local stub of an OpenAI-compatible server
  (a thread in this process) with the API key in an environment variable, plus a second
  secret that the models file pulls in through ``${VAR}``.  The stub checks that the key
  arrived as the bearer token; afterwards no written file (output, ``.jsonl`` journal,
  ``.config.json``) and neither captured stream may contain either secret.  One
  question makes the stub reject the request (HTTP 422), so the backend's error path
  for a question-level failure (an error record and a logged warning) is covered too.  A models file that holds
  a key is refused without echoing it.
* Pickles: the package and scripts are scanned for pickle-based loaders; a run with a
  Python audit hook must raise no ``pickle.find_class`` event (the hook also records
  socket connections and opened files).
* Model files: under the audit hook, a scripted run opens no weight files and no models
  file other than the one given with ``--models``; loading the embedded model (marked
  ``model``) opens no weight file but the configured GGUF and makes no connection.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import missing, require_module

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "fixtures" / "scripted_models.toml"
PACKAGED_MODELS = ROOT / "live_mind" / "models.toml"
KEY_VAR, TOKEN_VAR = "LIVEMIND_TEST_API_KEY", "LIVEMIND_TEST_TOKEN"
FAIL_WORD = "citric"  # in one sample question: the stub rejects every request about it
WEIGHT_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".h5", ".onnx",
                   ".msgpack", ".joblib", ".npy", ".npz")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.pop("LIVEMIND_MODELS", None)
    env.update(PYTHONPATH=str(ROOT), NO_PROXY="127.0.0.1,localhost", **extra)
    return env


# --------------------------------------------------------------------------- a stub OpenAI-compatible server


class StubServer:
    """Answers /v1/chat/completions; remembers headers and bodies it got."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, dict[str, Any]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                stub.seen.append((self.headers.get("Authorization"), body))
                text = json.dumps(body.get("messages", []))
                if FAIL_WORD in text:  # a request the server rejects: a question-level failure
                    self._reply(422, {"error": {"message": "stub rejects this prompt", "type": "invalid_request_error"}})
                    return
                inference = "problem so far" in text
                content = "action inference. The key fact is stated." if inference else "Thinking done. The answer is (A)."
                self._reply(200, {
                    "id": "stub-1", "object": "chat.completion", "created": 0, "model": body.get("model", "stub"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                })

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "StubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server


def stub_models_file(tmp: Path, port: int) -> Path:
    path = tmp / "models.toml"
    path.write_text(f"""
[models.stub]
backend = "openai"
description = "local stub server"
base_url = "http://127.0.0.1:{port}/v1"
model = "stub-model"
api_key_env = "{KEY_VAR}"
priming = "none"
max_concurrency = 1
max_retries = 1
backoff_base = 0.01
backoff_max = 0.01
timeout = 10.0
extra_body = {{ user = "${{{TOKEN_VAR}}}" }}
""")
    return path


def all_written_bytes(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("script, extra", [
    ("run_solver.py", ["--use_lm"]),
    ("run_batch_solver.py", ["--use_lm", "--batch_size", "4"]),
], ids=["realtime", "batched"])
def test_api_key_comes_from_the_environment_and_is_never_written(tmp_path, stub, script, extra):
    require_module("openai", "openai is not installed (pip install '.[openai]')")
    key, token = "sk-test-" + secrets.token_hex(16), "tok-" + secrets.token_hex(16)
    models = stub_models_file(tmp_path, stub.port)
    out = tmp_path / "run" / "all.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / script), "--models", str(models), "--model", "stub", *extra,
         "--output_file", str(out)],
        cwd=tmp_path, env=clean_env(**{KEY_VAR: key, TOKEN_VAR: token}), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

    assert stub.seen and all(auth == f"Bearer {key}" for auth, _ in stub.seen), "the key came from the environment"
    assert all(body.get("user") == token for _, body in stub.seen), "${VAR} in the models file was expanded for the call"
    records = json.loads(out.read_text())
    failed = [r for r in records if r["error"]]
    assert len(failed) == 1 and FAIL_WORD in failed[0]["question"] and "stub rejects this prompt" in failed[0]["error"]
    assert "failed questions: 1" in result.stdout and FAIL_WORD not in result.stdout

    written = all_written_bytes(tmp_path / "run")
    assert {p.name for p in written} >= {"all.json", "all.jsonl", "all.config.json"}
    for secret in (key, token):
        for path, data in written.items():
            assert secret.encode() not in data, f"secret found in {path.name}"
        assert secret not in result.stdout and secret not in result.stderr
    config = json.loads((tmp_path / "run" / "all.config.json").read_text())
    params = config["model_config"]["model"]["params"]
    assert params["api_key_env"] == KEY_VAR and params["extra_body"]["user"] == "${" + TOKEN_VAR + "}"


def test_a_key_written_in_the_models_file_is_refused_without_echoing_it(tmp_path):
    key = "sk-test-" + secrets.token_hex(16)
    models = tmp_path / "models.toml"
    models.write_text(f'[models.leaky]\nbackend = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\napi_key = "{key}"\n')
    out = tmp_path / "all.json"
    result = subprocess.run([sys.executable, str(ROOT / "run_solver.py"), "--models", str(models), "--model", "leaky",
                             "--output_file", str(out)], cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "looks like a secret" in result.stderr
    assert key not in result.stderr and key not in result.stdout
    assert not out.exists() and not out.with_suffix(".config.json").exists()


# --------------------------------------------------------------------------- no pickles

SOURCES = sorted([*(ROOT / "live_mind").rglob("*.py"), *ROOT.glob("*.py"), *(ROOT / "benchmarks").rglob("*.py")])
PICKLE_IMPORT = re.compile(r"^\s*(import|from)\s+(pickle|_pickle|cPickle|dill|cloudpickle|joblib|shelve)\b", re.M)
PICKLE_CALL = re.compile(r"\b(pickle|dill|joblib|cloudpickle)\.loads?\(|read_pickle\(|allow_pickle\s*=\s*True")
TORCH_LOAD = re.compile(r"\btorch\.load\(([^()]|\([^()]*\))*\)", re.S)


def test_no_source_file_loads_pickles():
    assert any(p.name == "cli.py" for p in SOURCES)
    offenders = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(ROOT)}: {m.group(0).strip()}" for m in PICKLE_IMPORT.finditer(text)]
        offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in PICKLE_CALL.finditer(text)]
        offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in TORCH_LOAD.finditer(text)
                      if not re.search(r"weights_only\s*=\s*True", m.group(0))]
    assert offenders == []


# --------------------------------------------------------------------------- what a run opens (audit hook)

AUDIT_HOOK = '''
import json, os, sys
_log = open(os.environ["LIVEMIND_AUDIT_LOG"], "a", buffering=1, encoding="utf-8")
def _hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)):
        _log.write(json.dumps(["open", os.path.abspath(os.fsdecode(args[0]))]) + "\\n")
    elif event in ("socket.connect", "pickle.find_class"):
        _log.write(json.dumps([event, repr(args[1:] if event == "socket.connect" else args)]) + "\\n")
sys.addaudithook(_hook)
'''


def audited_env(tmp: Path) -> dict[str, str]:
    site = tmp / "audit_site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(AUDIT_HOOK)
    env = clean_env(LIVEMIND_AUDIT_LOG=str(tmp / "audit.jsonl"))
    env["PYTHONPATH"] = f"{site}{os.pathsep}{ROOT}"
    return env


def audit_events(tmp: Path) -> dict[str, list[str]]:
    events: dict[str, list[str]] = {}
    for line in (tmp / "audit.jsonl").read_text(encoding="utf-8").splitlines():
        event, detail = json.loads(line)
        events.setdefault(event, []).append(detail)
    return events


def test_a_run_reads_only_the_configured_models_file_and_no_pickle_or_weights(tmp_path):
    out = tmp_path / "run" / "all.json"
    result = subprocess.run([sys.executable, str(ROOT / "run_solver.py"), "--models", str(MODELS), "--model", "scripted-fast",
                             "--use_lm", "--output_file", str(out)], cwd=tmp_path, env=audited_env(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    events = audit_events(tmp_path)
    opened = set(events.get("open", []))
    assert str(MODELS) in opened, "the audit hook sees the files a run opens"
    assert str(PACKAGED_MODELS) not in opened, "only the models file given with --models is read"
    assert [p for p in opened if p.lower().endswith(WEIGHT_SUFFIXES)] == []
    assert events.get("pickle.find_class", []) == []
    assert events.get("socket.connect", []) == []


@pytest.mark.model
def test_loading_the_embedded_model_reads_only_its_gguf(tmp_path):
    """The default model (about 20 s to load): the only weight file opened is the
    configured GGUF, no network connection, no pickle."""
    from live_mind.models.embedded import EMBEDDED_PIP, EmbeddedModelMissing, embedded_gguf_path

    try:
        gguf = embedded_gguf_path()
    except EmbeddedModelMissing:
        missing(f"embedded model not installed; run: {EMBEDDED_PIP}")
    code = ("from live_mind.models import registry\n"
            "model = registry.build(registry.resolve('smollm2-135m'), threads=1)\n"
            "print(model.name)\n")
    env = audited_env(tmp_path)
    env.update(HF_HUB_OFFLINE="0")  # offline mode would hide an attempted download; the hook must see none
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    events = audit_events(tmp_path)
    weights = {p for p in events.get("open", []) if p.lower().endswith(WEIGHT_SUFFIXES)}
    assert weights == {str(gguf)}
    assert events.get("socket.connect", []) == []
    assert events.get("pickle.find_class", []) == []
