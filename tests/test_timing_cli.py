"""``run_solver.py --timing`` and ``--concurrency`` end to end with a scripted model."""

from __future__ import annotations

import json

from test_validation import assert_rejected, run_script


def test_unknown_profile_is_rejected_before_loading(tmp_path):
    result, seconds = run_script("run_solver.py", ["--use_lm", "--timing", "no-such-profile"], tmp_path)
    assert_rejected(result, seconds, tmp_path, "unknown timing profile", "paper-llama-3-70b")


def test_bad_profiles_file_is_rejected(tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text("[profiles.x]\nfixed = 'slow'\n", encoding="utf-8")
    result, seconds = run_script("run_solver.py", ["--timing", "x", "--profiles", str(bad)], tmp_path)
    assert_rejected(result, seconds, tmp_path, "fixed must be a number")


def test_concurrency_needs_a_profile(tmp_path):
    result, seconds = run_script("run_solver.py", ["--use_lm", "--concurrency", "4"], tmp_path)
    assert_rejected(result, seconds, tmp_path, "--concurrency needs --timing PROFILE")
    result, seconds = run_script("run_solver.py", ["--use_lm", "--concurrency", "0", "--timing", "paper-llama-3-8b"], tmp_path)
    assert_rejected(result, seconds, tmp_path, "--concurrency must be >= 1")


def _run(tmp_path, name, *extra):
    out = tmp_path / name / "all.json"
    result, _ = run_script("run_solver.py", ["--use_lm", "--timing", "paper-llama-3-70b", "--output_file", str(out), *extra], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "timing: profile paper-llama-3-70b" in result.stdout
    config = json.loads(out.with_suffix(".config.json").read_text())
    return json.loads(out.read_text()), config, result.stdout


def test_sequential_and_concurrent_runs_give_identical_time_info(tmp_path):
    seq, config, _ = _run(tmp_path, "seq")
    conc, _, _ = _run(tmp_path, "conc", "--concurrency", "14")
    assert len(seq) == 14
    assert [r["question_id"] for r in seq] == [r["question_id"] for r in conc]
    assert [r["time_info"] for r in seq] == [r["time_info"] for r in conc]
    assert [r["usage"] for r in seq] == [r["usage"] for r in conc] and [r["pred"] for r in seq] == [r["pred"] for r in conc]
    assert seq[0]["config_id"] == conc[0]["config_id"]
    assert config["timing"] == "paper-llama-3-70b" and config["timing_profile"]["completion"] > 0
