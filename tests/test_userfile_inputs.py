"""Task files as real users write them (live_mind/tasks/userfile.py): spreadsheets' BOM,
ragged CSV rows, nulls and lists where text belongs, unicode digits, huge and
look-alike ids, broken JSONL lines.  Each is read correctly or refused with one line
that names the file and the row (or line); never a traceback, never a value the file
did not contain.  The last test runs the same files through ``run_solver.py``: exit 2,
one line, before any model loads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from live_mind.tasks.base import TaskError
from live_mind.tasks.resolve import resolve_task

ROOT = Path(__file__).resolve().parents[1]
HEADER = "qid,prompt,opt_a,opt_b,opt_c,opt_d,correct,topic\n"
LETTER = ('name = "t"\nanswer_kind = "{kind}"\n[columns]\nquestion = "prompt"\noptions = ["opt_a", "opt_b", "opt_c", "opt_d"]\n'
          'answer = "correct"\nid = "qid"\ncategory = "topic"\n')
FREE = 'name = "t"\nanswer_kind = "free"\n[columns]\nquestion = "q"\nanswer = "a"\nid = "id"\n'


def rows_of(tmp_path: Path, name: str, data: str | bytes, task: str = LETTER.format(kind="letter")) -> list[dict]:
    """The task's rows, or the ``TaskError`` raised (checked to be one line)."""
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    (tmp_path / "t.toml").write_text(task)
    return resolve_task(str(tmp_path / "t.toml"), str(path)).questions(None)


def refused(tmp_path: Path, name: str, data: str | bytes, task: str = LETTER.format(kind="letter")) -> str:
    with pytest.raises(TaskError) as info:
        rows_of(tmp_path, name, data, task)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(tmp_path / name)), message
    return message


def jsonl(*rows: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def quiz_row(**changes) -> dict:
    return {"qid": "q1", "prompt": "Q?", "opt_a": "a", "opt_b": "b", "opt_c": "c", "opt_d": "d", "correct": "B",
            "topic": "x", **changes}


def test_a_spreadsheet_csv_with_a_byte_order_mark_is_read(tmp_path):
    rows = rows_of(tmp_path, "d.csv", b"\xef\xbb\xbf" + (HEADER + "q1,Q?,a,b,c,d,B,x\n").encode())
    assert [(r["question_id"], r["answer"]) for r in rows] == [("q1", "B")]


def test_a_jsonl_file_with_a_byte_order_mark_is_read(tmp_path):
    rows = rows_of(tmp_path, "d.jsonl", b"\xef\xbb\xbf" + jsonl(quiz_row()).encode())
    assert rows[0]["question_id"] == "q1"


@pytest.mark.parametrize("answer", ["²", "١", "5" * 5000, "-1", "4", "1.0"])
def test_an_index_answer_that_is_no_index_is_refused(tmp_path, answer):
    message = refused(tmp_path, "d.csv", HEADER + f"q1,Q?,a,b,c,d,{answer},x\n", LETTER.format(kind="index"))
    assert "row 1 column 'correct': answer" in message and "is not among the 4 options (index)" in message


def test_ids_keep_the_file_text_when_converting_would_change_it(tmp_path):
    huge = "9" * 5000
    rows = rows_of(tmp_path, "d.csv", HEADER + f"7,Q?,a,b,c,d,B,x\n007,R?,a,b,c,d,A,x\n{huge},S?,a,b,c,d,A,x\n²,T?,a,b,c,d,A,x\n")
    assert [r["question_id"] for r in rows] == [7, "007", huge, "²"]


def test_digit_ids_are_integers_in_csv_and_jsonl_alike(tmp_path):
    csv_rows = rows_of(tmp_path, "d.csv", HEADER + "12,Q?,a,b,c,d,B,x\n")
    jsonl_rows = rows_of(tmp_path, "d.jsonl", jsonl(quiz_row(qid=12)))
    assert csv_rows == jsonl_rows and csv_rows[0]["question_id"] == 12


@pytest.mark.parametrize("column, value, fragment", [
    ("opt_c", None, "column 'opt_c': option 3 is null, not text"),
    ("opt_a", ["x"], "column 'opt_a': option 1 is a list, not text"),
    ("opt_b", True, "column 'opt_b': option 2 is true/false, not text"),
    ("opt_d", {"x": 1}, "column 'opt_d': option 4 is an object, not text"),
    ("correct", None, "column 'correct': empty answer"),
    ("topic", None, "column 'topic': the category is null, not text"),
    ("qid", None, "column 'qid': the id is null; ids are text or whole numbers"),
    ("qid", 1.5, "column 'qid': the id is the number 1.5"),
    ("prompt", 42, "column 'prompt': the question is the number 42, not text"),
    ("prompt", None, "column 'prompt': the question is null, not text"),
])
def test_a_jsonl_cell_of_the_wrong_type_is_refused_not_written_as_its_python_text(tmp_path, column, value, fragment):
    message = refused(tmp_path, "d.jsonl", jsonl(quiz_row(), quiz_row(**{"qid": "q2", column: value})))
    assert f"row 2 {fragment}" in message


def test_a_free_form_answer_given_as_a_list_is_refused(tmp_path):
    message = refused(tmp_path, "d.jsonl", jsonl({"id": 1, "q": "Capital of Japan?", "a": ["Tokyo"]}), FREE)
    assert message.endswith("row 1 column 'a': the answer is a list; answers are text or a number")


def test_a_free_form_number_answer_keeps_its_value(tmp_path):
    rows = rows_of(tmp_path, "d.jsonl", jsonl({"id": 1, "q": "6 x 7?", "a": 42}, {"id": 2, "q": "1/2?", "a": 0.5}), FREE)
    assert [r["answer"] for r in rows] == ["42", "0.5"]


@pytest.mark.parametrize("line, cells", [("q1,Q?,a,b,c,d,B\n", 7), ("q1,Q?,a,b,c\n", 5), ("q1,Q?,a,b,c,d,B,x,extra\n", 9)])
def test_a_csv_row_with_missing_or_extra_cells_is_refused_naming_the_row(tmp_path, line, cells):
    message = refused(tmp_path, "d.csv", HEADER + "q0,Q?,a,b,c,d,A,x\n" + line)
    assert message.endswith(f"row 2: {cells} cells, the header has 8")


def test_a_broken_jsonl_line_is_named_by_its_line_in_the_file(tmp_path):
    message = refused(tmp_path, "d.jsonl", jsonl(quiz_row()) + "\n" + '{"qid": "q2", "prompt": \n')
    assert message.endswith("d.jsonl line 3: not JSON: Expecting value"), "the file's line, not the column within it"


def test_a_jsonl_number_past_pythons_limit_is_refused_in_one_line(tmp_path):
    message = refused(tmp_path, "d.jsonl", jsonl(quiz_row()) + '{"qid": ' + "9" * 5000 + "}\n")
    assert "line 2: not JSON: Exceeds the limit (4300 digits)" in message


def test_a_parquet_cell_of_another_type_is_named_by_its_type(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = quiz_row()
    pq.write_table(pa.table({**{k: [v] for k, v in row.items()}, "prompt": [b"What?"]}), tmp_path / "d.parquet")
    (tmp_path / "t.toml").write_text(LETTER.format(kind="letter"))
    with pytest.raises(TaskError, match="row 1 column 'prompt': the question is bytes, not text"):
        resolve_task(str(tmp_path / "t.toml"), str(tmp_path / "d.parquet"))


def test_a_line_separator_inside_a_json_string_is_no_line_break(tmp_path):
    rows = rows_of(tmp_path, "d.jsonl", json.dumps(quiz_row(prompt="one\u2028two"), ensure_ascii=False) + "\n")
    assert rows[0]["question"] == "one\u2028two"


def test_deeply_nested_json_is_refused_in_one_line(tmp_path):
    message = refused(tmp_path, "d.jsonl", "[" * 100_000 + "\n")
    assert "line 1: JSON nested too deeply" in message


# The table of inputs real users produced, end to end: exit 2 and one line, no model.
CLI_CASES = {
    "index answer ²": ("d.csv", HEADER + "q1,Q?,a,b,c,d,²,x\n", "index", "answer '²' is not among"),
    "null option": ("d.jsonl", jsonl(quiz_row(opt_d=None)), "letter", "option 4 is null"),
    "ragged row": ("d.csv", HEADER + "q1,Q?,a,b,c,d,B\n", "letter", "row 1: 7 cells, the header has 8"),
    "broken line": ("d.jsonl", jsonl(quiz_row()) + "{\n", "letter", "line 2: not JSON"),
    "numeric question": ("d.jsonl", jsonl(quiz_row(prompt=7)), "letter", "the question is the number 7, not text"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_bad_user_files_exit_2_in_one_line_before_any_model(tmp_path, case):
    from test_tasks_cli import run

    name, data, kind, fragment = CLI_CASES[case]
    (tmp_path / name).write_text(data, encoding="utf-8")
    (tmp_path / "t.toml").write_text(LETTER.format(kind=kind))
    result = run("run_solver.py", ["--task", str(tmp_path / "t.toml"), "--data_path", str(tmp_path / name),
                                   "--output_file", str(tmp_path / "out" / "all.json")], tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and fragment in lines[0], result.stderr
    assert not (tmp_path / "marker").exists(), "a model was built before the input was checked"


LISTED = ('name = "t"\nanswer_kind = "letter"\n[columns]\nquestion = "q"\noptions = "opts"\nanswer = "a"\nid = "id"\n')
"""A task whose options are one column holding a list (a JSON list in a CSV cell)."""


@pytest.mark.parametrize("cell, fragment", [
    ('"[""a"", ""b"""', "column 'opts': not a list of options"),
    ('"[]"', "column 'opts': expected a list of 1-10 options"),
    ("5", "column 'opts': expected a list of 1-10 options"),
    ('"[' + ", ".join(['""x""'] * 11) + ']"', "column 'opts': expected a list of 1-10 options"),
    ('"[""a"", """"]"', "column 'opts': empty option"),
])
def test_an_options_cell_that_is_no_list_of_options_is_refused_naming_it(tmp_path, cell, fragment):
    message = refused(tmp_path, "d.csv", f"id,q,opts,a\n1,Q?,{cell},A\n", LISTED)
    assert message.endswith(f"row 1 {fragment}")


@pytest.mark.parametrize("count", [1, 10])
def test_an_options_cell_with_one_to_ten_options_is_read(tmp_path, count):
    options = [f"o{k}" for k in range(count)]
    cell = '"[' + ", ".join(f'""{o}""' for o in options) + ']"'
    rows = rows_of(tmp_path, "d.csv", f"id,q,opts,a\n1,Q?,{cell},A\n", LISTED)
    assert rows[0]["options"] == options and rows[0]["answer"] == "A"


@pytest.mark.parametrize("data, fragment", [
    (HEADER + "  ,Q?,a,b,c,d,B,x\n", "row 1 column 'qid': empty id"),
    (HEADER + "q1,Q?,a,,c,d,B,x\n", "row 1 column 'opt_b': empty option"),
    (HEADER + "q1,Q?,a,b,c,d,AB,x\n", "row 1 column 'correct': answer 'AB' is not among the 4 options (letter)"),
    ("", "row 0 (header) column 'prompt': missing column"),
])
def test_an_empty_cell_an_empty_file_or_a_two_letter_answer_is_refused_naming_it(tmp_path, data, fragment):
    assert refused(tmp_path, "d.csv", data).endswith(fragment)


def test_a_category_that_is_no_text_is_named_by_its_type(tmp_path):
    assert refused(tmp_path, "d.jsonl", jsonl(quiz_row(topic=["x"]))).endswith("column 'topic': the category is a list, not text")


def test_index_answers_have_at_most_three_digits_and_ids_up_to_the_limit_are_numbers(tmp_path):
    message = refused(tmp_path, "d.csv", HEADER + "q1,Q?,a,b,c,d,0001,x\n", LETTER.format(kind="index"))
    assert message.endswith("answer '0001' is not among the 4 options (index)")
    assert rows_of(tmp_path, "e.csv", HEADER + "q1,Q?,a,b,c,d,001,x\n", LETTER.format(kind="index"))[0]["answer"] == "B"
    longest = "1" + "0" * 3999  # MAX_INT_DIGITS digits: still a number
    assert rows_of(tmp_path, "f.csv", HEADER + f"{longest},Q?,a,b,c,d,B,x\n")[0]["question_id"] == int(longest)


def test_rows_after_a_blank_line_are_read(tmp_path):
    rows = rows_of(tmp_path, "d.csv", HEADER + "q1,Q?,a,b,c,d,B,x\n\nq2,R?,a,b,c,d,C,x\n")
    assert [r["question_id"] for r in rows] == ["q1", "q2"]
