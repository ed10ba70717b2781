"""Durable, resumable runs and failures that do not stop a run.

The solver scripts run as real subprocesses on the bundled sample set (14 questions)
with weightless scripted models from ``tests/fixtures/scripted_models.toml``;
``scripted-slow`` really sleeps 0.06 s per model call, so a run lasts a few seconds and
can be killed part-way.  Each interrupted run -- SIGKILL (a crash: nothing runs after
it) or one SIGINT (Ctrl-C: stop after the current question or batch) -- is resumed with
``--resume`` and compared with an uninterrupted run: every selected question exactly
once, records equal apart from timing fields.

The failure tests feed a small parquet file with an empty question, a question longer
than the scripted model's context and one that makes the backend fail; the run must
finish, record those three with an ``error`` and no prediction, print the failures in
its summary, and the analysis scripts must count them as wrong.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "fixtures" / "scripted_models.toml"
SAMPLE_SIZE = 14  # live_mind/sample_questions.json
TIMING_FIELDS = frozenset({"seconds", "start", "end", "time_info"})

REALTIME = ("run_solver.py", ["--use_lm", "--typing_jitter", "0.2"])
BATCHED = ("run_batch_solver.py", ["--use_lm", "--batch_size", "4"])


# --------------------------------------------------------------------------- helpers


def script_env(tmp: Path) -> dict[str, str]:
    """The scripts' environment.  No build marker: the marker path is part of the model
    parameters and so of ``config_id``, which must be the same in every run compared."""
    env = dict(os.environ)
    for var in ("LIVEMIND_MODELS", "LIVEMIND_TEST_MARKER"):
        env.pop(var, None)
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def command(script: str, extra: list[str], output: Path, model: str = "scripted-slow") -> list[str]:
    return [sys.executable, str(ROOT / script), "--models", str(MODELS), "--model", model, *extra,
            "--output_file", str(output)]


def run(cmd: list[str], tmp: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=script_env(tmp), capture_output=True, text=True, timeout=timeout)


def journal_lines(journal: Path) -> list[str]:
    """Complete lines only (a line being written has no newline yet)."""
    if not journal.exists():
        return []
    text = journal.read_text(encoding="utf-8")
    return text.split("\n")[:-1]


def start_and_wait_for(cmd: list[str], tmp: Path, journal: Path, records: int, timeout: float = 30) -> subprocess.Popen:
    """Start a run and return once its journal holds ``records`` finished questions."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=script_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while len(journal_lines(journal)) < records:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"run ended (rc {proc.returncode}) before {records} records were journaled:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {records} records journaled within {timeout} s")
        time.sleep(0.005)
    return proc


def strip_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_timing(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [strip_timing(v) for v in value]
    return value


def load(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))


def assert_same_run(resumed: list[dict[str, Any]], reference: list[dict[str, Any]]) -> None:
    ids = [r["question_id"] for r in resumed]
    assert len(ids) == len(set(ids)) == SAMPLE_SIZE, "every question exactly once"
    assert ids == [r["question_id"] for r in reference], "same questions in the same order"
    for got, want in zip(resumed, reference):
        assert strip_timing(got) == strip_timing(want), f"question {got['question_id']} differs"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, list[dict[str, Any]]]:
    """Uninterrupted runs of both scripts, the yardstick for the resumed ones."""
    tmp = tmp_path_factory.mktemp("reference")
    runs = {}
    for script, extra in (REALTIME, BATCHED):
        out = tmp / script.removesuffix(".py") / "all.json"
        result = run(command(script, extra, out), tmp)
        assert result.returncode == 0, result.stderr
        records = load(out)
        assert len(records) == SAMPLE_SIZE
        assert len(journal_lines(out.with_suffix(".jsonl"))) == SAMPLE_SIZE
        runs[script] = records
    return runs


# --------------------------------------------------------------------------- SIGKILL, then --resume


@pytest.mark.parametrize("script, extra", [REALTIME, BATCHED], ids=["realtime", "batched"])
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_result(tmp_path, reference, script, extra):
    out = tmp_path / "run" / "all.json"
    journal = out.with_suffix(".jsonl")
    proc = start_and_wait_for(command(script, extra, out), tmp_path, journal, records=2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    done = len(journal_lines(journal))
    assert 2 <= done < SAMPLE_SIZE, "killed mid-run"
    assert not out.exists(), "no final file from a crashed run"
    if script == "run_batch_solver.py":
        assert done % 4 == 0, "the batched journal grows one whole batch at a time"

    # forgetting --resume must not wipe the journal of the crashed run
    again = run(command(script, extra, out), tmp_path)
    assert again.returncode == 2 and "--resume" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert len(journal_lines(journal)) == done

    # resuming with a different configuration is refused, naming the differing key
    changed = run(command(script, [*extra, "--typing_speed", "0.3", "--resume"], out), tmp_path)
    assert changed.returncode == 2
    assert changed.stderr.strip().splitlines() == [changed.stderr.strip()]
    assert "typing_speed" in changed.stderr and "differs" in changed.stderr

    resumed = run(command(script, [*extra, "--resume"], out), tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({done} already done)" in resumed.stdout
    assert len(journal_lines(journal)) == SAMPLE_SIZE, "finished questions were not solved again"
    assert_same_run(load(out), reference[script])


# --------------------------------------------------------------------------- one Ctrl-C, then --resume


@pytest.mark.parametrize("script, extra", [REALTIME, BATCHED], ids=["realtime", "batched"])
def test_one_sigint_stops_after_the_current_question_and_resume_completes(tmp_path, reference, script, extra):
    out = tmp_path / "run" / "all.json"
    journal = out.with_suffix(".jsonl")
    proc = start_and_wait_for(command(script, extra, out), tmp_path, journal, records=1)
    at_signal = len(journal_lines(journal))
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    lines = journal_lines(journal)
    in_flight = 4 if script == "run_batch_solver.py" else 1
    assert at_signal <= len(lines) <= at_signal + in_flight < SAMPLE_SIZE, "stopped after the current question/batch"
    records = [json.loads(line) for line in lines]  # intact: every line a whole record
    assert len({r["question_id"] for r in records}) == len(records)
    assert "Traceback" not in stderr
    assert f"stopped after {len(lines)}/{SAMPLE_SIZE} questions" in stderr
    assert "--resume" in stderr and str(journal) in stderr
    assert not out.exists()
    if script == "run_batch_solver.py":
        assert len(lines) % 4 == 0, "the current batch is finished, not cut"

    resumed = run(command(script, [*extra, "--resume"], out), tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({len(lines)} already done)" in resumed.stdout
    assert_same_run(load(out), reference[script])


def test_resume_of_a_finished_run_changes_nothing(tmp_path, reference):
    out = tmp_path / "all.json"
    first = run(command("run_batch_solver.py", BATCHED[1], out, model="scripted-fast"), tmp_path)
    assert first.returncode == 0, first.stderr
    before = load(out)
    again = run(command("run_batch_solver.py", [*BATCHED[1], "--resume"], out, model="scripted-fast"), tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"({SAMPLE_SIZE} already done)" in again.stdout
    assert load(out) == before
    assert len(journal_lines(out.with_suffix(".jsonl"))) == SAMPLE_SIZE


# --------------------------------------------------------------------------- failures recorded, not fatal

LONG_QUESTION = "A long story. " + " ".join(["word"] * 450) + " What follows?"


def _row(qid: int, question: str, category: str = "math") -> dict[str, Any]:
    return {"question_id": qid, "question": question, "options": ["1", "2", "3"], "answer": "A", "answer_index": 0,
            "cot_content": "", "category": category, "src": "test"}


@pytest.fixture
def troubled_data(tmp_path) -> Path:
    """Five questions: two fine, one empty, one over the context, one the backend fails on."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        _row(1, "A box holds one apple. How many apples are in the box?"),
        _row(2, ""),
        _row(3, LONG_QUESTION),
        _row(4, "This one is cursed. TRIGGER-BACKEND-FAILURE happens here. Which option?", "law"),
        _row(5, "The sky is blue. What colour is the sky?", "law"),
    ]
    path = tmp_path / "troubled.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _check_failures(records: list[dict[str, Any]], stdout: str) -> None:
    by_id = {r["question_id"]: r for r in records}
    assert sorted(by_id) == [1, 2, 3, 4, 5], "the run went on past every failure"
    assert by_id[2]["error"] == "empty question"
    assert by_id[3]["error"].startswith("ContextLengthExceeded:")
    assert by_id[4]["error"].startswith("ModelError:")
    for qid in (2, 3, 4):
        assert by_id[qid]["pred"] is None and by_id[qid]["correct"] is False and by_id[qid]["solution"] == ""
    for qid in (1, 5):
        assert by_id[qid]["error"] is None and by_id[qid]["pred"] == "A" and by_id[qid]["correct"] is True
    line = next(line for line in stdout.splitlines() if "failed questions" in line)
    assert "failed questions: 3" in line
    for reason in ("empty question: 1", "ContextLengthExceeded: 1", "ModelError: 1"):
        assert reason in line


@pytest.mark.parametrize("script, analyzer, extra", [
    ("run_solver.py", "analyze_time_info.py", ["--use_lm"]),
    ("run_batch_solver.py", "analyze_batched.py", ["--use_lm", "--batch_size", "4"]),
], ids=["realtime", "batched"])
def test_failed_questions_are_recorded_and_counted_as_wrong(tmp_path, troubled_data, script, analyzer, extra):
    out = tmp_path / "run" / "all.json"
    cmd = command(script, [*extra, "--data_path", str(troubled_data)], out, model="scripted-flaky")
    result = run(cmd, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    records = load(out)
    _check_failures(records, result.stdout)
    assert len(journal_lines(out.with_suffix(".jsonl"))) == 5

    analysis = subprocess.run([sys.executable, str(ROOT / analyzer), str(out), "--no-figures"], cwd=ROOT,
                              env=script_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert analysis.returncode == 0, analysis.stderr
    assert f"{out}: 5 records, 3 failed (counted as wrong)" in analysis.stdout
    with open(out.parent / "timeinfo_by_category.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    all_row = dict(zip(rows[0], rows[1]))
    assert all_row["Category"] == "All" and all_row["Total"] == "5"
    accuracy = next(v for k, v in all_row.items() if "Accuracy" in k)
    assert float(accuracy) == pytest.approx(40.0), "2 right of 5: the 3 failed ones count as wrong"
