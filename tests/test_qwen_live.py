"""Live: the Qwen2.5-Coder-0.5B from its PyPI part packages on llama.cpp, LiveMind and the
CoT baseline on two sample questions through run_solver.py (the entries' defaults, a
smaller answer limit to keep CI short).  The records must be valid: every question
answered, no error, one inference call per sentence, the final call last, the answer
read by a named rule.  Skips (fails under $LIVEMIND_REQUIRE_ENGINES) without
llama-cpp-python or the parts (pip install '.[qwen]')."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import missing, require_module

require_module("llama_cpp", "llama-cpp-python is not installed (pip install '.[llamacpp]')")

from live_mind.models.parts import PartsError, check_parts, part_model  # noqa: E402
from live_mind.segment import split  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODEL = "qwen2.5-coder-0.5b"

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def parts_installed() -> None:
    try:
        check_parts(part_model(f"pypi:{MODEL}"))
    except PartsError as exc:
        missing(f"Qwen2.5-Coder-0.5B parts not installed: {exc}")


def _solve(tmp_path: Path, data: Path, *extra: str) -> tuple[list[dict], dict]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "run" / "all.json"
    env = {k: v for k, v in os.environ.items() if k != "LIVEMIND_MODELS"}
    result = subprocess.run([sys.executable, str(REPO / "run_solver.py"), "--model", MODEL, "--data_path", str(data),
                             "--max_new_tokens", "192", "--output_file", str(out), *extra],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(out.read_text()), json.loads(out.with_suffix(".config.json").read_text())


def _check_common(records: list[dict], config: dict) -> None:
    assert len(records) == 2
    assert config["answer_rule"] == "extended" and config["model_config"]["model"]["timing"] == "local-qwen2.5-coder-0.5b"
    for record in records:
        assert record["error"] is None and record["solution"].strip()
        assert record["steps"][-1]["kind"] == "final" and record["time_info"]["latency"] > 0
        assert record["answer_read_by"] in ("paper", "boxed", "answer-label", "bold", None)
        assert (record["pred"] is None) == (record["answer_read_by"] is None)
        usage = record["usage"]
        assert len(usage["completion_tokens"]) == len(usage["prompt_tokens"]) == len(record["steps"])
        assert 0 < usage["completion_tokens"][-1] <= 192


def test_livemind_and_cot_on_the_small_qwen(tmp_path, two_questions, parts_installed):
    records, config = _solve(tmp_path / "lm", two_questions, "--use_lm")
    _check_common(records, config)
    for record in records:
        inference = [s for s in record["steps"] if s["kind"] == "inference"]
        # the entry's granularity, one call per segment (v1 "every" schedule)
        assert len(inference) == len(split(record["question"], config["granularity"]))
        assert all(s["action"] is not None for s in inference)
    cot, cot_config = _solve(tmp_path / "cot", two_questions)
    _check_common(cot, cot_config)
    assert [r["question_id"] for r in cot] == [r["question_id"] for r in records]
    assert all(len(r["steps"]) == 1 for r in cot)
