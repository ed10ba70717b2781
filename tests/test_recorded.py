"""Replaying a finished run's inference stage (live_mind/models/recorded.py): another
answering model on the same inference calls, checked call by call (scripted models)."""

from __future__ import annotations

import json

from test_validation import MODELS, run_script

REPLAY = """
[models.replayed]
backend = "live_mind.models.recorded:RecordedInference"
run = "{run}"
"""


def _solve(tmp_path, name, models, *args):
    out = tmp_path / name / "all.json"
    result, _ = run_script("run_solver.py", ["--models", str(models), "--output_file", str(out), "--num_questions", "1", *args],
                           tmp_path, scripted=False)
    assert result.returncode == 0, result.stderr
    return out, json.loads(out.read_text())


def _models(tmp_path, run):
    path = tmp_path / "replay.toml"
    path.write_text(MODELS.read_text(encoding="utf-8") + REPLAY.format(run=run), encoding="utf-8")
    return path


def test_replayed_inference_stage_with_another_answering_model(tmp_path):
    first, original = _solve(tmp_path, "lm", MODELS, "--use_lm", "--model", "scripted-fast")
    models = _models(tmp_path, first)
    _, replayed = _solve(tmp_path, "collab", models, "--use_lm", "--model", "replayed", "--assist_model", "scripted-slow")
    assert [r["question_id"] for r in replayed] == [r["question_id"] for r in original]
    for a, b in zip(original, replayed):
        assert b["error"] is None
        keep = ("kind", "segments", "arrival", "start", "end", "response", "action", "prompt_tokens", "completion_tokens")
        assert [{k: s[k] for k in keep} for s in a["steps"][:-1]] == [{k: s[k] for k in keep} for s in b["steps"][:-1]]
        assert b["actions"] == a["actions"]


def test_a_mismatched_replay_is_an_error_record(tmp_path):
    first, _ = _solve(tmp_path, "lm", MODELS, "--use_lm", "--model", "scripted-fast")
    models = _models(tmp_path, first)
    # clause segments ask for calls the sentence-segmented run never made
    _, replayed = _solve(tmp_path, "other", models, "--use_lm", "--model", "replayed", "--granularity", "word")
    assert all(r["error"] and "recorded" in r["error"] for r in replayed)


def test_a_request_must_show_the_recorded_segments():
    from live_mind.models.recorded import _shows_segments

    question = "A ball is dropped from a tower. It falls for two seconds. How far does it fall?"
    assert _shows_segments("The problem so far (incomplete):\nA ball is dropped from a tower. It falls for two seconds.", question, 2)
    assert not _shows_segments("The problem so far (incomplete):\nA ball is dropped from a tower.", question, 2)  # fewer
    assert not _shows_segments(f"The problem so far (incomplete):\n{question}", question, 2)  # more
    assert _shows_segments(f"so far:\n{question}", question, 3)
