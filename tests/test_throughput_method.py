"""``benchmarks/throughput.py`` measures throughput on many more questions than slots.

A level N with fewer than 4 questions per slot measures the longest question, not the
rate: the script refuses it (exit 2, before any model loads) unless ``--allow_few``, and
then marks the row.  Runs the script as a subprocess on the scripted model.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "throughput.py"
SCRIPTED = ["--models", str(ROOT / "tests" / "fixtures" / "scripted_models.toml"), "--model", "scripted-fast",
            "--timing", "paper-llama-3-8b"]


def _run(*extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *SCRIPTED, *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_too_few_questions_per_slot_are_refused_before_any_model_loads():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from throughput import too_few
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert too_few(14, [1, 2, 3, 4]) == [4]
    assert too_few(1400, [1, 8, 28, 64]) == []
    done = _run("--concurrency", "1,4")  # the bundled 14 questions: 14 < 4 x 4
    assert done.returncode == 2
    assert "fewer than 4 per slot at N = [4]" in done.stderr and "Traceback" not in done.stderr


def test_allow_few_measures_and_marks_the_row():
    done = _run("--concurrency", "1,4", "--allow_few")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 1 |") or line.startswith("| 4 |")]
    assert rows[0].startswith("| 1 | 14 |") and rows[1].startswith("| 4 | 14 (few) |")
