"""A backend registered from outside the package: a ``--models`` file naming
``module:Factory`` and the module on ``PYTHONPATH``, nothing in ``live_mind/`` touched.
Both solvers run with it as real subprocesses (docs/backends.md, "Writing a backend")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests" / "fixtures" / "toy_backend"


def run(script: str, out: Path, *flags: str, pythonpath: str = str(TOY)) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([pythonpath, str(ROOT)])}
    return subprocess.run([sys.executable, script, "--models", str(TOY / "models.toml"), "--model", "toy-echo",
                           "--use_lm", "--num_questions", "1", "--output_file", str(out), *flags],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("script", ["run_solver.py", "run_batch_solver.py"])
def test_both_solvers_run_a_backend_from_outside_the_package(script, tmp_path):
    out = tmp_path / "all.json"
    done = run(script, out)
    assert done.returncode == 0, done.stderr
    records = json.loads(out.read_text())
    assert len(records) == 14 and not any(r.get("error") for r in records)
    assert all(r["pred"] == "B" for r in records), "the toy model's final answers are the records'"
    config = json.loads(out.with_suffix(".config.json").read_text())
    assert config["model_config"]["model"]["backend"] == "toy_echo:EchoModel"
    steps = [s for r in records for s in r.get("steps", [])]
    assert steps, "--use_lm records keep their steps"
    assert any(s["action"] == "inference" and s["parse_rule"] == "strict" for s in steps)


def test_an_unimportable_backend_is_one_line_before_any_model_loads(tmp_path):
    done = run("run_solver.py", tmp_path / "all.json", pythonpath=str(tmp_path))  # toy_echo not importable
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and "toy_echo:EchoModel" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
