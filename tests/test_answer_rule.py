"""``--answer_rule extended``: reads the answer formats instruct models write, records
which rule read each answer, and leaves the paper's rule (and config_id) untouched."""

from __future__ import annotations

import json

import pytest
from test_validation import ROOT, run_script

from live_mind.answer import extract_answer, read_answer
from live_mind.tasks.scoring import predict

EXTENDED_ONLY = [
    (r"The answer is \(\boxed{C}\)", "C", "boxed"),
    (r"so the result is $\boxed{(D)}$.", "D", "boxed"),
    (r"\boxed{\text{G}}", "G", "boxed"),
    ("Answer: C", "C", "answer-label"),
    ("The correct answer is: B", "B", "answer-label"),
    ("Final answer - (F)", "F", "answer-label"),
    ("Therefore **(C)** is right", "C", "bold"),
    ("**E. 42 m/s**", "E", "bold"),
]


@pytest.mark.parametrize("text,letter,rule", EXTENDED_ONLY)
def test_extended_formats(text, letter, rule):
    assert extract_answer(text) is None  # the paper's expression does not read it
    assert read_answer(text, "paper") == (None, None)
    assert read_answer(text, "extended") == (letter, rule)


@pytest.mark.parametrize("text", ["The answer is (B). Answer: C", "the answer is B, not \\boxed{C}"])
def test_the_papers_rule_comes_first(text):
    assert read_answer(text, "extended") == (extract_answer(text), "paper") == ("B", "paper")


def test_the_last_extended_match_wins():
    assert read_answer("Answer: A ... on reflection, Answer: D", "extended") == ("D", "answer-label")


@pytest.mark.parametrize("text", ["", None, "no letter here", "answer: a lower-case word", "Anyway, B is tempting"])
def test_nothing_read(text):
    assert read_answer(text, "extended") == (None, None)


def test_predict_follows_the_rows_rule():
    row = {"answer": "C", "options": list("ABCD")}
    assert predict(row, "Answer: C") == (None, False)
    assert predict({**row, "answer_rule": "extended"}, "Answer: C") == ("C", True)
    # a letter past the options of a letter task is no prediction, under either rule
    assert predict({**row, "answer_kind": "letter", "answer_rule": "extended"}, "Answer: F") == (None, False)


def _run(tmp_path, name, *extra):
    out = tmp_path / name / "all.json"
    result, _ = run_script("run_solver.py", ["--output_file", str(out), *extra], tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text()), json.loads(out.with_suffix(".config.json").read_text())


def test_records_name_the_rule_and_the_default_run_is_unchanged(tmp_path):
    paper, paper_config = _run(tmp_path, "paper")
    explicit, explicit_config = _run(tmp_path, "explicit", "--answer_rule", "paper")
    extended, extended_config = _run(tmp_path, "extended", "--answer_rule", "extended")
    # the paper's rule, default or named, leaves records and config_id exactly as before the option
    assert "answer_rule" not in paper_config and paper_config["config_id"] == explicit_config["config_id"]
    assert paper == explicit and all("answer_rule" not in r and "answer_read_by" not in r for r in paper)
    assert extended_config["answer_rule"] == "extended" and extended_config["config_id"] != paper_config["config_id"]
    for record in extended:
        assert record["answer_rule"] == "extended"
        assert record["answer_read_by"] == read_answer(record["solution"], "extended")[1]
    assert [r["pred"] for r in extended] == [r["pred"] for r in paper]  # the scripted model writes the paper's sentence


def test_question_offset_gives_a_disjoint_held_out_slice(tmp_path):
    import pandas as pd

    rows = json.loads((ROOT / "live_mind" / "sample_questions.json").read_text())[:3]
    twins = [{**row, "question_id": row["question_id"] + 100_000, "question": row["question"] + " Again."} for row in rows]
    data = tmp_path / "data.parquet"
    pd.DataFrame(rows + twins).to_parquet(data)
    first, _ = _run(tmp_path, "first", "--num_questions", "1", "--data_path", str(data))
    both, _ = _run(tmp_path, "both", "--num_questions", "2", "--data_path", str(data))
    held, config = _run(tmp_path, "held", "--num_questions", "1", "--question_offset", "1", "--data_path", str(data))
    assert len(first) == len(held) == 3 and len(both) == 6
    ids = lambda rows: [r["question_id"] for r in rows]  # noqa: E731
    assert set(ids(first)).isdisjoint(ids(held))
    assert sorted(ids(first) + ids(held)) == sorted(ids(both))
    assert config["question_offset"] == 1
