"""The benchmarks take ``--task``: ``benchmarks/latency.py`` runs a multiple-choice task's
questions (and refuses a free-form task in one line), ``benchmarks/serve_load.py`` types a
task's questions at a server; a bad task file is exit 2 before any model or connection."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from conftest import require_module

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def bench(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_latency_runs_a_task_file_and_refuses_a_free_form_one(tmp_path, capsys):
    latency = bench("latency")
    out = tmp_path / "rows.json"
    args = ["--models", str(FIXTURES / "scripted_tasks.toml"), "--model", "scripted-tasks", "--num_questions", "1",
            "--configs", "cot", "--typing_speed", "0.001"]
    assert latency.main([*args, "--task", str(FIXTURES / "quiz_task.toml"), "--data_path", str(FIXTURES / "quiz.jsonl"),
                         "--json", str(out)]) == 0
    [row] = json.loads(out.read_text())
    assert row["config"] == "cot" and row["questions"] == 2  # one per category: geography, science
    assert "2 questions from" in capsys.readouterr().out
    assert latency.main([*args, "--task", str(FIXTURES / "arithmetic_task.toml")]) == 2
    assert "free-form answers" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("qid,prompt\nq1,Q?\n")
    assert latency.main([*args, "--task", str(FIXTURES / "quiz_task.toml"), "--data_path", str(bad)]) == 2
    assert "missing column" in capsys.readouterr().err


def test_serve_load_types_a_tasks_questions(tmp_path, live_server, capsys):
    require_module("websockets", "the serve extra is not installed")
    from test_serve import ENTRY, create_app, engine_from_flags

    serve_load = bench("serve_load")
    models = tmp_path / "models.toml"
    models.write_text(ENTRY)
    url = live_server(create_app(engine_from_flags(models, "--max_sessions", "2", "--no-baseline")))
    out = tmp_path / "load.json"
    assert serve_load.main(["--url", url, "--sessions", "2", "--typing_speed", "0.002", "--task", str(FIXTURES / "quiz_task.toml"),
                            "--data_path", str(FIXTURES / "quiz.jsonl"), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["completed"] == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{\n")
    assert serve_load.main(["--url", "http://127.0.0.1:9", "--task", str(FIXTURES / "quiz_task.toml"), "--data_path", str(bad)]) == 2
    assert "line 1: not JSON" in capsys.readouterr().err
