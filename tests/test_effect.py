"""The effect analysis (live_mind/analysis/effect.py, summarize_runs.py): headline figures
per run and LiveMind's questions split by acted / waited, on hand-made records."""

from __future__ import annotations

import json

import pytest

import summarize_runs
from live_mind.analysis.effect import acted, acted_waited_table, common_questions, final_length_table, percentile, read_by, summary_table, wilson
from live_mind.analysis.tables import AnalysisError, load_run


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


def test_final_length_split_concluded_against_solved_again(runs):
    base, live = (load_run(p) for p in runs)
    split = final_length_table(base, [live], short=30)  # 20 and 30 tokens concluded; 290 and 310 solved again
    concluded, again = (dict(zip(split.header, r)) for r in split.rows)
    assert concluded["Questions Where"].startswith("concluded") and again["Questions Where"].startswith("solved again")
    assert (concluded["Questions"], concluded["Final Tokens"], concluded["Latency"]) == (2, 25, 1.5)
    assert concluded["Base Latency"] == pytest.approx(10.5) and concluded["Base Final Tokens"] == 300
    assert (again["Questions"], again["Final Tokens"], again["Accuracy"]) == (2, 300, 50.0)
    tight = [dict(zip(split.header, r)) for r in final_length_table(base, [live], short=20).rows]
    assert [row["Questions"] for row in tight] == [1, 3]  # the bound is inclusive: 20 tokens concluded, 30 not


def test_common_questions_keeps_what_every_run_holds(runs):
    base, live = (load_run(p) for p in runs)
    live.records, live.lengths, live.correct = live.records[1:], live.lengths[1:], live.correct[1:]  # stopped early
    kept = common_questions([base, live])
    assert [[r["question_id"] for r in run.records] for run in kept] == [[1, 2, 3], [1, 2, 3]]
    assert kept[0].correct == [True, False, True] and len(kept[0].lengths) == 3 and kept[0].path == base.path
    live.records = [{**r, "question_id": 9} for r in live.records]
    with pytest.raises(AnalysisError):
        common_questions([base, live])


def test_read_by_counts_the_rule_that_read_each_answer(runs):
    base, live = (load_run(p) for p in runs)
    assert read_by(live) == ""  # records that do not say (older runs): nothing made up
    for record, rule in zip(live.records, ["boxed", "paper", "boxed", None]):
        record["answer_read_by"] = rule
    assert read_by(live) == "boxed 2, none 1, paper 1"
    assert dict(zip(summary_table([live]).header, summary_table([live]).rows[0]))["Read By"] == "boxed 2, none 1, paper 1"


def test_script_writes_tables_and_figure(runs, tmp_path, capsys):
    assert summarize_runs.main([*map(str, runs), "--out_dir", str(tmp_path)]) == 0
    for name in ("summary.csv", "acted_waited.csv", "acted_waited.png", "final_length.csv", "final_length.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert summarize_runs.main([str(tmp_path / "missing.json")]) == 2


def test_script_compares_common_questions_only_when_asked(runs, tmp_path, capsys):
    records = json.loads(runs[1].read_text())
    runs[1].write_text(json.dumps(records[:3]))  # the LiveMind run stopped after three questions
    assert summarize_runs.main([*map(str, runs), "--out_dir", str(tmp_path), "--no_figures"]) == 0
    assert "3 questions common" not in capsys.readouterr().out
    assert (tmp_path / "summary.csv").read_text().splitlines()[1].split(",")[1] == "4"  # the baseline: all its records
    assert summarize_runs.main([*map(str, runs), "--out_dir", str(tmp_path), "--no_figures", "--common"]) == 0
    assert "3 questions common to all 2 runs" in capsys.readouterr().out
    assert (tmp_path / "summary.csv").read_text().splitlines()[1].split(",")[1] == "3"
    with pytest.raises(SystemExit) as refused:  # argparse: one line, exit 2
        summarize_runs.main([*map(str, runs), "--short_final", "0"])
    assert refused.value.code == 2


def test_a_journal_reads_as_its_run_latest_record_per_question(runs, tmp_path, capsys):
    records = json.loads(runs[1].read_text())
    journal = runs[1].with_suffix(".jsonl")  # a run still going: a retried question twice, a torn last line
    retried = {**records[2], "solution": "The answer is (A)."}
    lines = [json.dumps(r) for r in (records[0], records[2], records[1], retried)]
    journal.write_text("\n".join(lines) + "\n" + json.dumps(records[3])[:40])
    run = load_run(journal)
    assert [r["question_id"] for r in run.records] == [0, 2, 1] and run.correct == [True, True, True]
    assert summarize_runs.main([str(runs[0]), str(journal), "--common", "--no_figures", "--out_dir", str(tmp_path)]) == 0
    assert "3 questions common to all 2 runs" in capsys.readouterr().out
    with pytest.raises(AnalysisError, match="no such file"):
        load_run(tmp_path / "missing.jsonl")
    journal.write_text("\n".join(["{not json", *lines]) + "\n")
    with pytest.raises(AnalysisError, match="line 1"):
        load_run(journal)


def test_split_figure_tick_labels_of_several_runs_stand_apart(runs):
    """Two LiveMind runs give four groups: their three-line tick labels must not overlap."""
    from live_mind.analysis.figures import FINAL_LENGTH_TITLE, split_figure

    base, live = (load_run(p) for p in runs)
    fig = split_figure(final_length_table(base, [live, load_run(runs[1])], short=30), FINAL_LENGTH_TITLE)
    fig.canvas.draw()
    boxes = [label.get_window_extent() for label in fig.axes[0].get_xticklabels()]
    assert len(boxes) == 4
    for left, right in zip(boxes, boxes[1:]):
        assert left.x1 < right.x0, "neighbouring tick labels overlap"
