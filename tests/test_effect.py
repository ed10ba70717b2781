"""The effect analysis (live_mind/analysis/effect.py, summarize_runs.py): headline figures
per run and LiveMind's questions split by acted / waited, on hand-made records."""

from __future__ import annotations

import json

import pytest

import summarize_runs
from live_mind.analysis.effect import acted, acted_waited_table, percentile, summary_table, wilson
from live_mind.analysis.tables import load_run


def test_wilson_interval():
    low, high = wilson(6, 28)
    assert low == pytest.approx(10.2, abs=0.1) and high == pytest.approx(39.5, abs=0.1)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 100.0 and wilson(0, 0) == (0.0, 0.0)


def test_percentile():
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    assert percentile([], 50) is None


def _record(qid, latency, final_tokens, *, actions=(), correct=True, inference=True):
    steps = []
    if inference:
        steps.append({"kind": "inference", "segments": 1, "arrival": 1.0, "start": 1.0, "end": 2.0, "prompt_tokens": 10,
                      "completion_tokens": 5, "cached_tokens": 0, "action": "inference" if actions else "wait"})
    steps.append({"kind": "final", "segments": 1, "arrival": 5.0, "start": 5.0, "end": 5.0 + latency, "prompt_tokens": 20,
                  "completion_tokens": final_tokens, "cached_tokens": 0, "action": None})
    return {"question_id": qid, "question": f"Question {qid}?", "category": "math", "answer": "A", "options": ["x", "y"],
            "solution": "The answer is (A)." if correct else "The answer is (B).",
            "usage": {"completion_tokens": [s["completion_tokens"] for s in steps]}, "time_info": {"latency": latency},
            "steps": steps, "actions": [{"type": "inference", "content": "c"}] if actions else [], "error": None}


@pytest.fixture
def runs(tmp_path):
    base = [_record(q, 10.0 + q, 300, inference=False, correct=q != 2) for q in range(4)]
    live = [_record(0, 1.0, 20, actions=True), _record(1, 2.0, 30, actions=True), _record(2, 12.0, 290, correct=False),
            _record(3, 13.0, 310)]
    paths = []
    for name, records in (("base", base), ("live", live)):
        path = tmp_path / name / "all.json"
        path.parent.mkdir()
        path.write_text(json.dumps(records))
        path.with_suffix(".config.json").write_text(json.dumps({"max_new_tokens": 300}))
        paths.append(path)
    return paths


def test_acted_is_a_kept_non_wait_action():
    assert acted(_record(0, 1.0, 5, actions=True)) is True
    assert acted(_record(0, 1.0, 5)) is False
    quirk = _record(0, 1.0, 5)  # "action wait" without its period, kept by the paper's rule as "wai"
    quirk["actions"] = [{"type": "wai", "content": "t"}]
    assert acted(quirk) is False
    empty = _record(0, 1.0, 5)  # a bare "action inference": a working name, no work
    empty["actions"] = [{"type": "inference", "content": " "}]
    assert acted(empty) is False
    assert acted(_record(0, 1.0, 5, inference=False)) is None


def test_summary_and_split(runs):
    base, live = (load_run(p) for p in runs)
    summary = summary_table([base, live])
    row = dict(zip(summary.header, summary.rows[1]))
    assert row["Questions"] == 4 and row["Accuracy"] == 75.0
    assert row["Latency Mean"] == pytest.approx(7.0) and row["Latency P50"] == pytest.approx(7.0)
    assert row["Acted"] == "2/4" and row["Replies Parsed"] == "4/4" and row["Final At Limit"] == "1/4"
    assert dict(zip(summary.header, summary.rows[0]))["Final At Limit"] == "4/4"
    split = acted_waited_table(base, [live])
    acted_row, waited_row = (dict(zip(split.header, r)) for r in split.rows)
    assert (acted_row["Questions"], acted_row["Latency"], acted_row["Final Tokens"]) == (2, 1.5, 25)
    assert acted_row["Base Latency"] == pytest.approx(10.5) and acted_row["Base Final Tokens"] == 300
    assert (waited_row["Questions"], waited_row["Latency"], waited_row["Accuracy"]) == (2, 12.5, 50.0)
    assert waited_row["Base Latency"] == pytest.approx(12.5)


def test_script_writes_tables_and_figure(runs, tmp_path, capsys):
    assert summarize_runs.main([*map(str, runs), "--out_dir", str(tmp_path)]) == 0
    for name in ("summary.csv", "acted_waited.csv", "acted_waited.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert summarize_runs.main([str(tmp_path / "missing.json")]) == 2
