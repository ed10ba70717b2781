"""Live llama.cpp tests.

* The OpenAI-compatible path end to end: start ``python -m llama_cpp.server`` on
  127.0.0.1 (free port, ``--n_threads 2``) with the embedded GGUF, wait until it
  answers, run ``run_solver.py`` and ``run_batch_solver.py --model smollm2-135m-server
  --use_lm`` on two sample questions, then stop the server by its PID.
* The in-process llama.cpp backend: KV-prefix reuse as llama-cpp-python reports it,
  constrained choices, prefix healing, and token-for-token agreement with the server.

Everything skips with the reason when llama-cpp-python or the embedded model is absent.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import missing, require_module

require_module("llama_cpp", "llama-cpp-python is not installed (pip install '.[llamacpp]')")
require_module("openai", "openai is not installed (pip install '.[openai]')")

from live_mind.models import registry  # noqa: E402
from live_mind.models.base import ChatRequest  # noqa: E402
from live_mind.models.embedded import EmbeddedModelMissing, embedded_gguf_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 90.0


def _gguf() -> Path:
    try:
        return embedded_gguf_path()
    except EmbeddedModelMissing as exc:
        missing(f"embedded model not installed: {exc}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _start_server(port: int, log: Path) -> subprocess.Popen:
    """Start a llama.cpp server on ``port`` and wait until it answers."""
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(_gguf()), "--host", "127.0.0.1",
               "--port", str(port), "--n_threads", "2", "--n_ctx", "4096", "--model_alias", "smollm2-135m",
               "--verbose", "False"]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + READY_TIMEOUT
    while not _ready(url):
        if process.poll() is not None:
            pytest.fail(f"llama.cpp server exited with {process.returncode}: {log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"llama.cpp server not ready after {READY_TIMEOUT:.0f} s: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    return process


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A llama.cpp server on a free loopback port; yields its /v1 URL."""
    port = _free_port()
    process = _start_server(port, tmp_path_factory.mktemp("server") / "server.log")
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(process)


def _run(script: str, url: str, data: Path, output: Path, *extra: str) -> None:
    command = [sys.executable, script, "--model", "smollm2-135m-server", "--use_lm", "--num_questions", "1",
               "--data_path", str(data), "--output_file", str(output), "--max_new_tokens", "48", *extra]
    env = {**os.environ, "LIVEMIND_SERVER_URL": url, "PYTHONPATH": str(REPO)}
    env.pop(registry.MODELS_ENV, None)
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{script} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


def _check_records(output: Path, url: str) -> list[dict]:
    records = json.loads(output.read_text())
    assert len(records) == 2
    for record in records:
        assert record.get("error") is None
        usage = record["usage"]
        assert len(usage["prompt_tokens"]) == len(usage["completion_tokens"]) >= 2
        assert all(n > 0 for n in usage["prompt_tokens"])
        assert isinstance(record["solution"], str)
    config = json.loads(output.with_suffix(".config.json").read_text())
    model = config["model_config"]["model"]
    assert model["backend"] == "openai" and model["params"]["base_url"] == url
    return records


@pytest.mark.server
def test_run_solver_against_live_server(server, two_questions, tmp_path):
    output = tmp_path / "all.json"
    _run("run_solver.py", server, two_questions, output)
    records = _check_records(output, server)
    assert all("time_info" in r and r["time_info"]["latency"] > 0 for r in records)


@pytest.mark.server
def test_run_batch_solver_against_live_server(server, two_questions, tmp_path):
    output = tmp_path / "all.json"
    _run("run_batch_solver.py", server, two_questions, output, "--batch_size", "2")
    _check_records(output, server)


@pytest.mark.server
def test_server_killed_mid_run_and_restarted_loses_nothing(two_questions, tmp_path):
    """SIGKILL the live server once the first question is journaled, start it again
    after longer than the client's own retries (a copy of the packaged entry with two
    attempts 0.1 s apart; reloading the model takes seconds more): the run waits for it,
    and its file equals an uninterrupted run's (modelled timing; measured seconds aside)."""
    import signal

    port = _free_port()
    log = tmp_path / "server.log"
    models = tmp_path / "models.toml"
    entry = (REPO / "live_mind" / "models.toml").read_text()
    start = entry.index("[models.smollm2-135m-server]")
    body = entry[start:entry.index("\n[", start + 1)]
    models.write_text(body + "\nmax_retries = 1\nbackoff_base = 0.1\nbackoff_max = 0.1\n")
    env = {**os.environ, "LIVEMIND_SERVER_URL": f"http://127.0.0.1:{port}/v1", "PYTHONPATH": str(REPO)}
    env.pop(registry.MODELS_ENV, None)

    def command(output: Path) -> list[str]:
        return [sys.executable, "run_solver.py", "--models", str(models), "--model", "smollm2-135m-server", "--use_lm",
                "--num_questions", "1", "--data_path", str(two_questions), "--output_file", str(output),
                "--max_new_tokens", "48", "--timing", "paper-llama-3-8b", "--max_outage", "300"]

    process = _start_server(port, log)
    try:
        reference = tmp_path / "reference" / "all.json"
        done = subprocess.run(command(reference), cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        output = tmp_path / "run" / "all.json"
        run = subprocess.Popen(command(output), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        journal = output.with_suffix(".jsonl")
        deadline = time.monotonic() + 600
        while not (journal.exists() and journal.read_text().count("\n") >= 1):
            assert run.poll() is None and time.monotonic() < deadline, "the run ended before its first record"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=15)
        time.sleep(1.0)
        process = _start_server(port, log)
        stdout, stderr = run.communicate(timeout=900)
        assert run.returncode == 0, stderr[-3000:]
        assert "Traceback" not in stderr and "is back" in stderr
    finally:
        _stop(process)

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "seconds"}
        return [strip(v) for v in value] if isinstance(value, list) else value

    got, want = json.loads(output.read_text()), json.loads(reference.read_text())
    assert [r["error"] for r in got] == [None, None]
    assert strip(got) == strip(want)


# ------------------------------------------------------------------ in-process backend

MESSAGES = [{"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": "A train travels 60 km in 1.5 hours. What is its average speed?"}]


@pytest.fixture(scope="module")
def local_model():
    _gguf()
    return registry.build(registry.resolve("smollm2-135m-llamacpp"), n_threads=2, n_ctx=2048)


@pytest.mark.model
def test_prefix_reuse_is_reported_as_cached(local_model, capfd):
    first = ChatRequest(MESSAGES, max_new_tokens=8)
    longer = ChatRequest(MESSAGES[:1] + [{"role": "user", "content": MESSAGES[1]["content"] + " Options: 40, 50."}],
                         max_new_tokens=8)
    local_model.llm.reset()
    [a] = local_model.complete([first])
    capfd.readouterr()
    local_model.llm.verbose = True  # llama-cpp-python then prints its prefix-match hits
    try:
        [b] = local_model.complete([longer])
    finally:
        local_model.llm.verbose = False
    err = capfd.readouterr().err
    assert a.cached_tokens == 0
    hit = [line for line in err.splitlines() if "prefix-match hit" in line]
    assert hit, err[-1000:]
    reused = int(hit[0].split("Llama.generate: ")[1].split()[0])
    assert b.cached_tokens == reused > 20
    assert b.prompt_tokens == len(local_model.prompt_tokens(longer))


@pytest.mark.model
def test_choices_and_healing(local_model):
    [choice] = local_model.complete([ChatRequest(MESSAGES, choices=["40 km/h", "50 km/h"])])
    assert choice.text in ("40 km/h", "50 km/h")
    [primed] = local_model.complete([ChatRequest(MESSAGES, max_new_tokens=6, assistant_prefix="action ")])
    assert primed.text and not primed.text[0].isspace()
    assert primed.completion_tokens == 6 and primed.finish_reason == "length"


@pytest.mark.model
def test_a_draft_is_verified_in_one_pass_and_only_its_greedy_prefix_kept(local_model):
    """PredGen's draft path (``ChatRequest.draft``): the model's own reply as the draft is
    kept (nothing or next to nothing generated after it); a draft that goes astray keeps
    only a prefix, never the words it made up, and the answer goes on from there.  Exact
    texts are not asserted: batched verification and one-token decoding may break a
    near-tie differently on another CPU."""
    request = ChatRequest(MESSAGES, max_new_tokens=24)
    [plain] = local_model.complete([request])
    [same] = local_model.complete([ChatRequest(MESSAGES, max_new_tokens=24, draft=plain.text)])
    assert same.extra["draft_tokens"] > 3 and same.extra["draft_accepted"] > 0
    assert same.completion_tokens < plain.completion_tokens
    words = plain.text.split()
    astray = " ".join(words[: len(words) // 2]) + " zebra quantum marmalade."
    [changed] = local_model.complete([ChatRequest(MESSAGES, max_new_tokens=24, draft=astray)])
    assert 0 < changed.extra["draft_accepted"] < changed.extra["draft_tokens"]
    assert "zebra" not in changed.text and changed.text.startswith(words[0]) and changed.completion_tokens > 0
    assert changed.prompt_tokens == plain.prompt_tokens + changed.extra["draft_tokens"]
    # the cache holds the prompt, the kept prefix and what was generated: no rejected draft token
    held, prompt = list(local_model.llm._input_ids), local_model.prompt_tokens(request)
    assert held[:len(prompt)] == prompt
    assert "zebra" not in local_model.llm.detokenize(held[len(prompt):]).decode("utf-8", errors="ignore")


@pytest.mark.server
@pytest.mark.model
def test_in_process_and_server_agree(local_model, server, monkeypatch):
    monkeypatch.setenv("LIVEMIND_SERVER_URL", server)
    remote = registry.build(registry.resolve("smollm2-135m-server"), tokenizer=local_model.tokenizer)
    requests = [ChatRequest(MESSAGES, max_new_tokens=24),
                ChatRequest(MESSAGES, max_new_tokens=24, assistant_prefix="action "),
                ChatRequest(MESSAGES, choices=["40 km/h", "50 km/h"])]
    # llama.cpp's results depend on how a prompt is split into evaluation batches (a
    # token evaluated alone goes through other kernels than one inside a batch), so
    # both sides start from an empty cache and then see the same request sequence.
    local_model.llm.reset()
    local = local_model.complete(requests)
    served = remote.complete(requests)
    assert [c.text for c in local] == [c.text for c in served]
    assert [c.prompt_tokens for c in local] == [c.prompt_tokens for c in served]
