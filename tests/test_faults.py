"""Faults lose nothing: the solver scripts, run as subprocesses, against faults outside them.

* An OpenAI-compatible server (``fixtures/stub_openai_server.py``, a process on a free
  port of 127.0.0.1) is SIGKILLed after a few questions and restarted later than the
  client's own retries: the run rides the outage out.  Killed for longer than
  ``--max_outage``: the run stops with exit code 75 and a resumable journal.  Either way
  the final file equals an uninterrupted run's -- under a timing profile the simulated
  times are exact, so only the measured per-call ``seconds`` are left out of the
  comparison -- with no ``error`` record and no traceback.
* vLLM's engine dies mid-run: the real backend class over a stand-in engine that raises
  vLLM's own ``EngineDeadError`` (``fixtures/fake_vllm_run.py``); the same two outcomes.
* An outage under ``--concurrency`` (the scripted model's ``unavailable_while`` switch):
  every question in flight waits, none is recorded as failed.
* A full disk: the output lives on a small tmpfs mounted here (or, where mounting is not
  allowed, under ``RLIMIT_FSIZE``); the run stops with one line, the journal is whole,
  and ``--resume`` completes once space is freed.
* A journal whose last line was torn by a crash is repaired on ``--resume``; a damaged
  line in the middle is exit 2.
* ``--resume --retry_failed`` re-runs exactly the questions recorded with an error.
* A torn ``all.json`` given to the analysis scripts: one line naming file and byte offset.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import missing, require_module

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SCRIPTED = FIXTURES / "scripted_models.toml"
SAMPLE_SIZE = 14
PROFILE = ["--timing", "paper-llama-3-8b"]
REALTIME = ("run_solver.py", ["--use_lm", *PROFILE])
BATCHED = ("run_batch_solver.py", ["--use_lm", "--batch_size", "4"])
MEASURED = frozenset({"seconds"})  # each call's measured wall time: the only field that may differ


def env(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("LIVEMIND")}
    environment.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", NO_PROXY="127.0.0.1,localhost", **extra)
    return environment


def command(script: str, models: Path, model: str, extra: list[str], output: Path, launcher: list[str] = ()) -> list[str]:
    return [sys.executable, *launcher, str(ROOT / script), "--models", str(models), "--model", model, *extra,
            "--output_file", str(output)]


def run(cmd: list[str], timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kwargs)


def journal_lines(journal: Path) -> list[str]:
    return journal.read_text(encoding="utf-8").split("\n")[:-1] if journal.exists() else []


def wait_for_records(proc: subprocess.Popen, journal: Path, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(journal_lines(journal)) < count:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"run ended (rc {proc.returncode}) before {count} records:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {count} records within {timeout} s")
        time.sleep(0.005)


def strip(value: Any, fields: frozenset[str] = MEASURED) -> Any:
    if isinstance(value, dict):
        return {k: strip(v, fields) for k, v in value.items() if k not in fields}
    if isinstance(value, list):
        return [strip(v, fields) for v in value]
    return value


def load(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))


def assert_lost_nothing(output: Path, reference: list[dict[str, Any]]) -> None:
    """The final file equals the uninterrupted run's; the journal holds every question
    exactly once, as whole lines, none with an error."""
    records = load(output)
    assert [r["question_id"] for r in records] == [r["question_id"] for r in reference]
    assert not [r["question_id"] for r in records if r["error"]], "no question recorded as failed"
    assert strip(records) == strip(reference)
    journal = [json.loads(line) for line in journal_lines(output.with_suffix(".jsonl"))]
    ids = [r["question_id"] for r in journal]
    assert sorted(ids) == sorted(r["question_id"] for r in reference), "journaled once each: none lost, none twice"


def assert_stopped_resumably(result_rc: int, stderr: str, output: Path, what: str) -> list[dict[str, Any]]:
    """Exit 75, one ``error:`` line naming the fault and the resume command, no
    traceback, a whole journal without error records and no final file."""
    assert result_rc == 75, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert what in errors[0] and "Resume with:" in errors[0] and errors[0].rstrip().endswith("--resume")
    assert str(output.with_suffix(".jsonl")) in errors[0]
    journal = [json.loads(line) for line in journal_lines(output.with_suffix(".jsonl"))]  # every line whole
    assert 0 < len(journal) < SAMPLE_SIZE and not [r for r in journal if r["error"]]
    assert len({r["question_id"] for r in journal}) == len(journal)
    assert not output.exists()
    return journal


# --------------------------------------------------------------------------- a server killed mid-run


def switchable_models(tmp: Path) -> tuple[Path, Path, Path]:
    """A models file with a scripted model that is away while ``backend-off`` exists and
    fails the questions matching the regex in ``fail-on`` (question-level) while that
    file exists; the switch paths are fixed in the file, so every run shares one
    configuration."""
    off, fail_on = tmp / "backend-off", tmp / "fail-on"
    models = tmp / "switchable.toml"
    models.write_text(f"""
[models.scripted-switchable]
backend = "scripted"
description = "a scripted model with an outage switch and a failure switch"
seconds = 0.5
sleep = 0.02
unavailable_while = "{off}"
fail_on_file = "{fail_on}"
default = "Working through it, the answer is (A)."
rules = {{ "problem so far" = "action inference. The statement so far fixes the main quantity.", "\\\\(B\\\\): 2\\\\b" = "So the answer is (B)." }}
""")
    return models, off, fail_on


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """The stub server as a process that can be SIGKILLed and started again."""

    def __init__(self, port: int, delay: float) -> None:
        self.port, self.delay, self.proc = port, delay, None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(FIXTURES / "stub_openai_server.py"), str(self.port), str(self.delay)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[Server, Path]]:
    require_module("openai", "openai is not installed (pip install '.[openai]')")
    srv = Server(free_port(), delay=0.02)
    models = tmp_path_factory.mktemp("server") / "models.toml"
    # The client's own retries are short (two attempts, 0.05 s apart); the outages below last longer.
    models.write_text(f"""
[models.stub]
backend = "openai"
description = "stub server, killed and restarted by the tests"
base_url = "http://127.0.0.1:{srv.port}/v1"
model = "stub-model"
priming = "none"
max_concurrency = 4
max_retries = 1
backoff_base = 0.05
backoff_max = 0.05
timeout = 5.0
""")
    srv.start()
    try:
        yield srv, models
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()


@pytest.fixture(scope="module")
def server_reference(server, tmp_path_factory) -> dict[str, list[dict[str, Any]]]:
    """Uninterrupted runs of both scripts against the stub server."""
    srv, models = server
    runs = {}
    for script, extra in (REALTIME, BATCHED):
        out = tmp_path_factory.mktemp("reference") / "all.json"
        result = run(command(script, models, "stub", extra, out), env=env())
        assert result.returncode == 0, result.stderr
        runs[script] = load(out)
        assert len(runs[script]) == SAMPLE_SIZE and not [r for r in runs[script] if r["error"]]
    return runs


@pytest.mark.parametrize("script, extra", [REALTIME, BATCHED], ids=["realtime", "batched"])
def test_server_killed_and_restarted_later_than_the_client_retries_is_ridden_out(tmp_path, server, server_reference,
                                                                                 script, extra):
    srv, models = server
    out = tmp_path / "all.json"
    proc = subprocess.Popen(command(script, models, "stub", [*extra, "--max_outage", "60"], out), cwd=ROOT, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_records(proc, out.with_suffix(".jsonl"), 4 if script == BATCHED[0] else 3)
        srv.kill()
        time.sleep(2.0)  # the client gave up after ~0.1 s; the run waits
        assert proc.poll() is None, "the run waits for the server instead of failing"
        srv.start()
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if srv.proc.poll() is not None:
            srv.start()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "backend stub unavailable" in stderr and "waiting up to 60 s" in stderr and "backend stub is back" in stderr
    assert_lost_nothing(out, server_reference[script])


@pytest.mark.parametrize("script, extra", [REALTIME, BATCHED], ids=["realtime", "batched"])
def test_server_away_longer_than_max_outage_stops_with_75_then_resume_completes(tmp_path, server, server_reference,
                                                                                script, extra):
    srv, models = server
    out = tmp_path / "all.json"
    cmd = command(script, models, "stub", [*extra, "--max_outage", "1.5"], out)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_records(proc, out.with_suffix(".jsonl"), 4 if script == BATCHED[0] else 3)
        srv.kill()
        killed = time.monotonic()
        stdout, stderr = proc.communicate(timeout=60)
        stopped_after = time.monotonic() - killed
    finally:
        srv.start()
    assert_stopped_resumably(proc.returncode, stderr, out, "backend unavailable: backend stub")
    assert "longer than --max_outage 1.5" in stderr
    assert stopped_after < 1.5 + 3.0, "stops within the budget (plus the client's own retries)"
    resumed = run([*cmd, "--resume"], env=env())
    assert resumed.returncode == 0, resumed.stderr
    assert_lost_nothing(out, server_reference[script])


# --------------------------------------------------------------------------- vLLM's engine dies


@pytest.fixture(scope="module")
def vllm_setup(tmp_path_factory) -> tuple[Path, list[dict[str, Any]]]:
    if __import__("importlib").util.find_spec("vllm") is None:
        missing("vllm is not installed (its EngineDeadError class is needed)")
    models = tmp_path_factory.mktemp("vllm") / "models.toml"
    models.write_text('[models.fake-vllm]\nbackend = "vllm"\ndescription = "the vLLM backend over a stand-in engine"\n'
                      'model = "/nonexistent/fake-vllm-model"\nprime_actions = true\n')
    out = tmp_path_factory.mktemp("vllm-reference") / "all.json"
    result = run(command(*REALTIME[:1], models, "fake-vllm", REALTIME[1], out, [str(FIXTURES / "fake_vllm_run.py")]),
                 env=env())
    assert result.returncode == 0, result.stderr
    return models, load(out)


@pytest.mark.parametrize("restarts", [True, False], ids=["engine-restarts", "engine-stays-dead"])
def test_vllm_engine_death_is_ridden_out_or_stops_resumably(tmp_path, vllm_setup, restarts):
    models, reference = vllm_setup
    out, down = tmp_path / "all.json", tmp_path / "engine-down"
    launcher = [str(FIXTURES / "fake_vllm_run.py")]
    cmd = command(REALTIME[0], models, "fake-vllm", [*REALTIME[1], "--max_outage", "30" if restarts else "1"], out, launcher)
    fault = env(LIVEMIND_FAKE_VLLM_DIE_AFTER="12", LIVEMIND_FAKE_VLLM_DOWN=str(down))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=fault, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not down.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert down.exists(), "the engine died mid-run"
    if restarts:
        time.sleep(1.0)
        down.unlink()  # a new engine can start now
    stdout, stderr = proc.communicate(timeout=60)
    assert "EngineDeadError" in stderr
    if restarts:
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr and "is back" in stderr
    else:
        assert_stopped_resumably(proc.returncode, stderr, out, "backend unavailable: backend fake-vllm")
        down.unlink()
        resumed = run([*cmd, "--resume"], env=env())
        assert resumed.returncode == 0, resumed.stderr
    assert_lost_nothing(out, reference)


# --------------------------------------------------------------------------- outage under --concurrency


def test_an_outage_under_concurrency_pauses_every_question_in_flight(tmp_path):
    extra = ["--use_lm", *PROFILE, "--concurrency", "4"]
    models, switch, _ = switchable_models(tmp_path)
    reference = tmp_path / "reference" / "all.json"
    assert run(command("run_solver.py", models, "scripted-switchable", extra, reference), env=env()).returncode == 0
    out = tmp_path / "run" / "all.json"
    proc = subprocess.Popen(command("run_solver.py", models, "scripted-switchable", [*extra, "--max_outage", "30"], out),
                            cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_records(proc, out.with_suffix(".jsonl"), 2)
    switch.touch()
    time.sleep(1.0)
    paused_at = len(journal_lines(out.with_suffix(".jsonl")))
    time.sleep(0.5)
    assert len(journal_lines(out.with_suffix(".jsonl"))) == paused_at, "nothing finishes while the backend is away"
    switch.unlink()
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert stderr.count("unavailable (") == 1, "one outage for all the questions in flight"
    assert_lost_nothing(out, load(reference))


# --------------------------------------------------------------------------- a full disk


def _mount_tmpfs(where: Path, size_kb: int) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


def _limit_file_size(limit: int):  # noqa: ANN202
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("script, extra", [REALTIME, BATCHED], ids=["realtime", "batched"])
def test_a_full_disk_stops_with_one_line_and_a_whole_journal_and_resume_completes(tmp_path, script, extra):
    reference = tmp_path / "reference" / "all.json"
    assert run(command(script, SCRIPTED, "scripted-fast", extra, reference), env=env()).returncode == 0
    disk = tmp_path / "disk"
    mounted = _mount_tmpfs(disk, 512)
    try:
        out = disk / "all.json"
        cmd = command(script, SCRIPTED, "scripted-fast", extra, out)
        journal_size = reference.with_suffix(".jsonl").stat().st_size
        room = reference.with_suffix(".config.json").stat().st_size + journal_size // 2
        if mounted:  # fill the disk to leave room for the configuration and half the journal
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            (disk / "filler").write_bytes(b"\0" * (free - room))
            result = run(cmd, env=env())
        else:  # no mounting allowed here: the journal may not grow past half its size
            assert reference.with_suffix(".config.json").stat().st_size < journal_size // 2
            result = run(cmd, env=env(), preexec_fn=_limit_file_size(journal_size // 2))
        assert result.returncode == 75, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "write failed" in errors[0] and "--resume" in errors[0], result.stderr
        assert ("No space left on device" if mounted else "File too large") in errors[0]
        text = out.with_suffix(".jsonl").read_text(encoding="utf-8")
        assert text == "" or text.endswith("\n"), "no torn line: the failed write was cut back"
        journal = [json.loads(line) for line in text.splitlines()]
        assert len(journal) < SAMPLE_SIZE and not out.exists()
        if mounted:
            (disk / "filler").unlink()  # space freed
        resumed = run([*cmd, "--resume"], env=env())
        assert resumed.returncode == 0, resumed.stderr
        assert f"({len(journal)} already done)" in resumed.stdout
        assert_lost_nothing(out, load(reference))
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


# --------------------------------------------------------------------------- torn and damaged journals


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "all.json"
    result = run(command("run_solver.py", SCRIPTED, "scripted-fast", REALTIME[1], out), env=env())
    assert result.returncode == 0, result.stderr
    return out


def _copy_run(finished: Path, to: Path) -> Path:
    to.mkdir(parents=True, exist_ok=True)
    for suffix in (".jsonl", ".config.json"):
        shutil.copy(finished.with_suffix(suffix), to / ("all" + suffix))
    return to / "all.json"


def test_a_torn_last_journal_line_is_repaired_on_resume(tmp_path, finished):
    out = _copy_run(finished, tmp_path)
    journal = out.with_suffix(".jsonl")
    data = journal.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    journal.write_bytes(data[:last + (len(data) - last) // 2])  # a crash half-way through the last write
    resumed = run(command("run_solver.py", SCRIPTED, "scripted-fast", [*REALTIME[1], "--resume"], out), env=env())
    assert resumed.returncode == 0, resumed.stderr
    assert "note: dropped the torn last line" in resumed.stderr and "Traceback" not in resumed.stderr
    assert f"({SAMPLE_SIZE - 1} already done)" in resumed.stdout
    assert_lost_nothing(out, load(finished))


def test_a_damaged_middle_journal_line_is_exit_2(tmp_path, finished):
    out = _copy_run(finished, tmp_path)
    journal = out.with_suffix(".jsonl")
    lines = journal.read_text(encoding="utf-8").split("\n")
    lines[2] = lines[2][: len(lines[2]) // 2]
    journal.write_text("\n".join(lines), encoding="utf-8")
    before = journal.read_bytes()
    result = run(command("run_solver.py", SCRIPTED, "scripted-fast", [*REALTIME[1], "--resume"], out), env=env())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "line 3 is not valid JSON" in result.stderr and str(journal) in result.stderr
    assert journal.read_bytes() == before, "never silently skipped or rewritten"


# --------------------------------------------------------------------------- --retry_failed


@pytest.mark.parametrize("script, extra", [REALTIME, BATCHED], ids=["realtime", "batched"])
def test_retry_failed_reruns_exactly_the_error_records(tmp_path, script, extra):
    models, _, fail_on = switchable_models(tmp_path)
    reference = tmp_path / "reference" / "all.json"
    assert run(command(script, models, "scripted-switchable", extra, reference), env=env()).returncode == 0
    out = tmp_path / "run" / "all.json"
    cmd = command(script, models, "scripted-switchable", extra, out)
    fail_on.write_text("citric|Berlin Wall")
    first = run(cmd, env=env())
    fail_on.unlink()
    assert first.returncode == 0, first.stderr
    failed = {r["question_id"] for r in load(out) if r["error"]}
    assert failed == {90006, 90014}
    again = run([*cmd, "--resume"], env=env())  # a plain resume keeps the failures
    assert again.returncode == 0 and f"({SAMPLE_SIZE} already done)" in again.stdout
    assert {r["question_id"] for r in load(out) if r["error"]} == failed
    lines_before = len(journal_lines(out.with_suffix(".jsonl")))
    retried = run([*cmd, "--resume", "--retry_failed"], env=env())
    assert retried.returncode == 0, retried.stderr
    assert f"({SAMPLE_SIZE - len(failed)} already done)" in retried.stdout
    journal = [json.loads(line) for line in journal_lines(out.with_suffix(".jsonl"))]
    assert {r["question_id"] for r in journal[lines_before:]} == failed and len(journal) == lines_before + len(failed), \
        "exactly the error records were solved again; the journal keeps the history"
    assert load(out) == load(reference), "the final file holds each question once, its latest record"


def test_retry_failed_needs_resume(tmp_path):
    result = run(command("run_solver.py", SCRIPTED, "scripted-fast", ["--retry_failed"], tmp_path / "all.json"), env=env())
    assert result.returncode == 2 and "--retry_failed needs --resume" in result.stderr
    bad = run(command("run_solver.py", SCRIPTED, "scripted-fast", ["--max_outage", "-1"], tmp_path / "all.json"), env=env())
    assert bad.returncode == 2 and "--max_outage must be >= 0" in bad.stderr


# --------------------------------------------------------------------------- torn analysis inputs


@pytest.mark.parametrize("analyzer", ["analyze_time_info.py", "compare_runs.py", "fit_profile.py"])
def test_a_torn_run_file_given_to_the_analysis_is_one_line_naming_the_byte_offset(tmp_path, finished, analyzer):
    torn = tmp_path / "all.json"
    data = finished.read_bytes()
    torn.write_bytes(data[: len(data) * 2 // 3])
    args = {"analyze_time_info.py": [str(torn), "--no-figures"],
            "compare_runs.py": [str(finished), str(torn), "--no-figures", "--out-dir", str(tmp_path)],
            "fit_profile.py": [str(torn), "--name", "x"]}[analyzer]
    result = run([sys.executable, str(ROOT / analyzer), *args], env=env())
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert str(torn) in result.stderr and f"byte {len(data) * 2 // 3}" in result.stderr and "truncated" in result.stderr
