"""The output record schema (``records.py``) and how a run's records are stamped with
its ``config_id`` (``runfiles.RunWriter``)."""

from __future__ import annotations

import json

from live_mind.actions import Action
from live_mind.clock import CallTime, TimeInfo
from live_mind.models.base import Completion
from live_mind.records import MMLU_FIELDS, build_record, error_record, kept_actions
from live_mind.runfiles import RunWriter
from live_mind.steps import StepResult

ROW = {"question_id": 7, "question": "Why?", "options": ["a", "b"], "answer": "B", "answer_index": 1,
       "cot_content": "", "category": "physics", "src": "test", "extra_column": "not copied"}


def _step(kind: str, response: str, tokens: tuple[int, int, int], action: Action | None = None) -> StepResult:
    prompt, completion, cached = tokens
    return StepResult(kind, 1, [], response, Completion(response, prompt, completion, 0.5, cached), action,
                      action.rule if action else None)


STEPS = [
    _step("inference", "action inference. light scatters", (10, 4, 0), Action("inference", "light scatters", "strict")),
    _step("inference", "action wait.", (12, 2, 10), Action("wait", "", "strict")),
    _step("final", "Scattering. The answer is (B).", (20, 8, 12)),
]


def test_a_solved_record_has_the_v1_fields_first_then_the_toolkit_fields():
    timings = [CallTime(1, 0.0, 0.0, 0.5), CallTime(1, 0.0, 0.5, 1.0), CallTime(1, 2.0, 2.0, 2.5)]
    record = build_record(ROW, STEPS, "livemind", timings, TimeInfo(2.5, 0.5, 1.5, 0.0), {"config_id": "abc"})
    assert list(record)[:len(MMLU_FIELDS)] == list(MMLU_FIELDS) and "extra_column" not in record
    assert list(record)[len(MMLU_FIELDS):] == ["solution", "usage", "time_info", "pred", "correct", "mode", "steps",
                                              "actions", "error", "config_id"]
    assert record["usage"] == {"completion_tokens": [4, 2, 8], "prompt_tokens": [10, 12, 20],
                               "total_tokens": [14, 14, 28], "cached_tokens": [0, 10, 12]}
    assert record["pred"] == "B" and record["correct"] is True and record["error"] is None
    assert record["steps"][0]["action"] == "inference" and record["steps"][2]["action"] is None
    assert record["steps"][2]["start"] == 2.0 and record["time_info"]["latency"] == 0.5
    json.dumps(record)  # plain JSON


def test_only_non_wait_actions_are_kept_with_their_step():
    assert kept_actions(STEPS) == [{"type": "inference", "content": "light scatters", "parse_rule": "strict", "step": 0}]


def test_a_record_without_a_final_step_has_no_solution_and_is_wrong():
    record = build_record(ROW, STEPS[:2], "livemind")
    assert record["solution"] == "" and record["pred"] is None and record["correct"] is False
    assert "time_info" not in record and "arrival" not in record["steps"][0]


def test_an_error_record_keeps_the_schema_and_counts_as_wrong():
    record = error_record(ROW, "cot", "ModelError: boom")
    assert record["error"] == "ModelError: boom" and record["correct"] is False and record["steps"] == []
    assert set(record["usage"]) == {"completion_tokens", "prompt_tokens", "total_tokens", "cached_tokens"}


def test_the_writer_stamps_every_record_with_the_run_config_id(tmp_path):
    output = tmp_path / "all.json"
    writer = RunWriter.open(output, {"config_id": "c0ffee", "script": "time_info"}, resume=False)
    record = build_record(ROW, STEPS, "livemind")
    writer.append(record)
    writer.append_many([error_record({**ROW, "question_id": 8}, "livemind", "empty question")])
    assert "config_id" not in record  # the caller's dict is left alone
    journal = [json.loads(line) for line in output.with_suffix(".jsonl").read_text().splitlines()]
    assert [r["config_id"] for r in journal] == ["c0ffee", "c0ffee"]
    assert [r["config_id"] for r in writer.finish()] == ["c0ffee", "c0ffee"]
    resumed = RunWriter.open(output, {"config_id": "c0ffee", "script": "time_info"}, resume=True)
    assert resumed.config_id == "c0ffee" and resumed.done_ids() == {7, 8}
