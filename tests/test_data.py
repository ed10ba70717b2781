"""MMLU-Pro loading, selection and option rendering, plus the answer regex."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import shared_path

from live_mind.answer import extract_answer, is_correct
from live_mind.data import (
    MMLU_PRO_CATEGORIES,
    MMLU_PRO_COLUMNS,
    DataError,
    format_options,
    format_question_with_options,
    is_local_source,
    load_questions,
    select_questions,
    to_record,
    validate_data_path,
)
from live_mind.segment import count_sentences

PUBLISHED_RUN = "data/livemind-v1/llama_3_70b_lm/all.json"
QUESTIONS_1400 = "data/mmlu-pro-1400"


def _row(qid: int, category: str, n_options: int = 4, answer_index: int = 1) -> dict:
    return {
        "question_id": qid,
        "question": f"Question {qid}? It is about {category}.",
        "options": [f"option {i}" for i in range(n_options)],
        "answer": "ABCDEFGHIJ"[answer_index],
        "answer_index": answer_index,
        "cot_content": "",
        "category": category,
        "src": "test",
    }


def _write_parquet(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path


@pytest.fixture
def hub_folder(tmp_path: Path) -> Path:
    rows = [_row(i, c, n_options=3 + i % 8, answer_index=i % 3) for i, c in enumerate(["math", "law"] * 3)]
    _write_parquet(tmp_path / "mmlu" / "data" / "test-00000-of-00001.parquet", rows)
    return tmp_path / "mmlu"


# --------------------------------------------------------------------------- loading


def test_load_hub_layout_folder(hub_folder, tmp_path):
    validate_data_path(hub_folder)
    rows = load_questions(str(hub_folder), cache_dir=str(tmp_path / "cache"))
    assert len(rows) == 6
    first = rows[0]
    assert list(first) == list(MMLU_PRO_COLUMNS)
    assert first["options"] == ["option 0", "option 1", "option 2"]
    assert type(first["options"]) is list and type(first["answer_index"]) is int
    assert type(first["question_id"]) is int
    assert [r["question_id"] for r in rows] == list(range(6))


def test_load_single_file_and_flat_folder(tmp_path):
    rows = [_row(7, "biology"), _row(8, "history")]
    file = _write_parquet(tmp_path / "flat" / "anything.parquet", rows)
    cache = str(tmp_path / "cache")
    assert load_questions(file, cache_dir=cache) == [to_record(r) for r in rows]
    assert load_questions(str(tmp_path / "flat"), cache_dir=cache) == [to_record(r) for r in rows]


def test_sample_set():
    rows = load_questions(None)
    assert len(rows) == 14
    assert [r["category"] for r in rows] == list(MMLU_PRO_CATEGORIES)
    assert len({r["question_id"] for r in rows}) == 14
    for r in rows:
        assert list(r) == list(MMLU_PRO_COLUMNS)
        assert 3 <= len(r["options"]) <= 10
        assert r["answer"] == "ABCDEFGHIJ"[r["answer_index"]]
        assert r["cot_content"] == "" and r["src"] == "livemind-sample"
        assert len(set(r["options"])) == len(r["options"])
    assert len({r["answer"] for r in rows}) >= 6, "answer letters should vary"
    assert len({len(r["options"]) for r in rows}) >= 4, "option counts should vary"
    assert sum(count_sentences(r["question"]) >= 2 for r in rows) >= 8, "needs multi-sentence questions"
    assert sum(len(r["question"]) for r in rows) < 4000


def test_sample_file_is_valid_json_in_package():
    path = Path(__file__).resolve().parents[1] / "live_mind" / "sample_questions.json"
    assert len(json.loads(path.read_text(encoding="utf-8"))) == 14


def test_shared_1400_questions_load_and_select_all(tmp_path):
    folder = shared_path(QUESTIONS_1400)
    validate_data_path(folder)
    rows = load_questions(str(folder), cache_dir=str(tmp_path / "cache"))
    assert len(rows) == 1400
    for procedure in ("v1", "per-category"):
        selected = select_questions(rows, 100, procedure=procedure)
        assert len(selected) == 1400
        assert {r["question_id"] for r in selected} == {r["question_id"] for r in rows}
    # the published run lists its categories in the paper's fixed order, as v1 selection does
    # (the ids inside a category differ here: the shuffle ran over the full 12,032-row split)
    published = json.loads(shared_path(PUBLISHED_RUN).read_text(encoding="utf-8"))
    assert [r["category"] for r in select_questions(rows, 100)] == [r["category"] for r in published]


def test_is_local_source(hub_folder):
    assert is_local_source(hub_folder)
    assert is_local_source("./missing") and is_local_source("x.parquet") and is_local_source("/a/b")
    assert not is_local_source("TIGER-Lab/MMLU-Pro")


# --------------------------------------------------------------------------- errors


def test_error_missing_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        validate_data_path(tmp_path / "nope")
    with pytest.raises(DataError, match="does not exist"):
        load_questions(str(tmp_path / "nope.parquet"))
    with pytest.raises(DataError, match="does not exist"):
        load_questions("./no/such/folder")


def test_error_folder_without_parquet(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"no parquet files .*data/test-\*\.parquet"):
        validate_data_path(tmp_path)


def test_error_split_not_present(hub_folder):
    with pytest.raises(DataError, match=r"data/validation-\*\.parquet"):
        validate_data_path(hub_folder, split="validation")


def test_error_not_a_parquet_file(tmp_path):
    file = tmp_path / "questions.csv"
    file.write_text("a,b\n")
    with pytest.raises(DataError, match="not a .parquet file"):
        validate_data_path(file)


def test_error_wrong_columns_named(tmp_path):
    _write_parquet(tmp_path / "data" / "test-00000-of-00001.parquet", [{"question": "q", "answer": "A"}])
    with pytest.raises(DataError, match="missing column.*question_id, options, answer_index, cot_content, category, src"):
        validate_data_path(tmp_path)
    with pytest.raises(DataError, match="missing column"):
        load_questions(str(tmp_path))


def test_error_corrupt_parquet(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read parquet schema"):
        validate_data_path(tmp_path / "bad.parquet")


def test_error_inconsistent_answer():
    row = _row(1, "math", n_options=3, answer_index=1)
    row["answer"] = "C"
    with pytest.raises(DataError, match="question 1: answer 'C'"):
        to_record(row)
    row = _row(2, "math", n_options=3, answer_index=1)
    row["answer_index"], row["answer"] = 5, "F"
    with pytest.raises(DataError, match="question 2"):
        to_record(row)


# --------------------------------------------------------------------------- selection


def _many_rows() -> list[dict]:
    cats = ["math", "law", "biology"]
    return [_row(i, cats[i % 3] if i < 30 else "law") for i in range(40)]


def test_select_groups_in_the_paper_category_order_and_takes_n():
    rows = _many_rows()
    chosen = select_questions(rows, 4)
    assert [r["category"] for r in chosen] == ["math"] * 4 + ["law"] * 4 + ["biology"] * 4
    old = select_questions([r for r in rows if r["category"] != "math"] + [r for r in rows if r["category"] == "math"],
                           4, procedure="per-category")
    assert [r["category"] for r in old] == ["law"] * 4 + ["biology"] * 4 + ["math"] * 4  # first-seen order
    assert len({r["question_id"] for r in chosen}) == 12


def test_select_is_deterministic_and_seeded():
    rows = _many_rows()
    ids = lambda sel: [r["question_id"] for r in sel]  # noqa: E731
    assert ids(select_questions(rows, 5)) == ids(select_questions(rows, 5, seed=42))
    assert ids(select_questions(rows, 5, seed=1)) != ids(select_questions(rows, 5, seed=2))
    old = select_questions(rows, 5, procedure="per-category")
    assert ids(old) == ids(select_questions(rows, 5, procedure="per-category"))
    assert ids(old) != ids(select_questions(rows, 5))


def test_select_documented_per_category_procedure():
    import random

    rows = _many_rows()
    law = [r for r in rows if r["category"] == "law"]
    random.Random(7).shuffle(law)
    chosen = [r for r in select_questions(rows, 3, seed=7, procedure="per-category") if r["category"] == "law"]
    assert chosen == law[:3]
    # a category's pick does not depend on the other categories being present
    only_law = [r for r in rows if r["category"] == "law"]
    assert select_questions(only_law, 3, seed=7, procedure="per-category") == chosen


def test_select_v1_procedure_with_datasets_directly():
    """The paper's selection written out with ``datasets``: the split in question_id
    order, one whole-split shuffle with seed 42, then the first N of each category in
    the fixed category order."""
    import datasets

    categories = ["computer science", "math", "chemistry", "engineering", "law", "biology", "health",
                  "physics", "business", "philosophy", "economics", "other", "psychology", "history"]
    mixed = ["history", "math", "law", "computer science", "physics", "other", "math", "biology"]
    rows = [_row(i, mixed[(i * 5) % len(mixed)]) for i in range(120)]
    split = datasets.Dataset.from_list(rows).shuffle(seed=42)
    expected = [row["question_id"] for cat in categories
                for row in [r for r in split if r["category"] == cat][:6]]
    reordered = rows[::-1]  # the input order does not matter: question_id order is restored
    assert [r["question_id"] for r in select_questions(reordered, 6, seed=42)] == expected
    assert [r["question_id"] for r in select_questions(reordered, 6)][:6] == expected[:6]
    assert [r["question_id"] for r in select_questions(rows, 6, seed=3)] != expected


def test_select_none_keeps_all_grouped_in_order():
    rows = _many_rows()
    chosen = select_questions(rows, None)
    assert len(chosen) == 40
    math = [r["question_id"] for r in chosen if r["category"] == "math"]
    assert math == sorted(math)
    assert [r["category"] for r in chosen][:10] == ["math"] * 10


def test_select_more_than_available_and_bad_arguments():
    rows = _many_rows()
    assert len(select_questions(rows, 1000)) == 40
    assert select_questions(rows, 0) == []
    assert select_questions([], 5) == []
    with pytest.raises(ValueError, match="per_category"):
        select_questions(rows, -1)
    with pytest.raises(ValueError, match="unknown procedure"):
        select_questions(rows, 1, procedure="random")
    with pytest.raises(ValueError, match="unknown procedure"):
        select_questions(rows, 1, procedure="whole-set")


# --------------------------------------------------------------------------- rendering


def test_format_options():
    assert format_options(["red", "green", "blue"]) == "Options are:\n(A): red\n(B): green\n(C): blue"
    ten = format_options([str(i) for i in range(10)]).splitlines()
    assert len(ten) == 11 and ten[-1] == "(J): 9"
    with pytest.raises(DataError, match="at most 10"):
        format_options([str(i) for i in range(11)])


def test_format_question_with_options():
    text = format_question_with_options("What is 2 + 2? ", ["3", "4"])
    assert text == "What is 2 + 2?\nOptions are:\n(A): 3\n(B): 4"


# --------------------------------------------------------------------------- answer regex


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("So the answer is (B).", "B"),
        ("The answer is C", "C"),
        ("the answer is (J)", "J"),
        ("First the answer is (A); no wait, the answer is (D).", "A"),  # first match wins
        ("The answer is: (B)", None),  # the paper's regex needs 'is ' right before
        ("The Answer is (B)", None),  # case-sensitive, as in the paper
        ("answer is (K)", None),
        ("The answer is (b)", None),
        ("I think it's B.", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_is_correct():
    assert is_correct("... The answer is (E).", "E")
    assert not is_correct("... The answer is (E).", "D")
    assert not is_correct("no prediction here", "A")


def test_batched_pre_sort_uses_the_paper_category_order():
    from live_mind.batch import order_by_length

    rows = [_row(1, "history"), _row(2, "math"), _row(3, "computer science"), _row(4, "math")]
    rows[0]["question"] = "One sentence only?"
    ordered = order_by_length(rows, lambda text: text.split("? "))
    # one segment first, then two segments in category order (computer science before math)
    assert [r["question_id"] for r in ordered] == [1, 3, 2, 4]
