"""Property tests of the task-file reader (live_mind/tasks/userfile.py) with hypothesis:
generated CSV, JSONL and parquet files -- random text, unicode digits, byte-order marks,
ragged rows, nulls, lists, NaN, huge numbers, duplicate and look-alike ids, broken lines.

Every file ends in one of two ways: valid records, each value of which the file holds
(the question as written, the options and category trimmed, the id as its text or the
integer that text spells, the answer among the options), or a ``TaskError`` of one line
naming the file -- which the scripts turn into exit 2.  Never another exception (a
traceback), never a record with a value the file did not contain.  Example counts stay
small (CI has two cores): about 150 files in all.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from live_mind.data import OPTION_LETTERS
from live_mind.tasks.base import TaskError
from live_mind.tasks.resolve import resolve_task

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])
COLUMNS = ["qid", "prompt", "opt_a", "opt_b", "opt_c", "opt_d", "correct", "topic"]
TASK = ('name = "p"\nanswer_kind = "{kind}"\n[columns]\nquestion = "prompt"\noptions = ["opt_a", "opt_b", "opt_c", "opt_d"]\n'
        'answer = "correct"\nid = "qid"\ncategory = "topic"\n')
KINDS = st.sampled_from(["letter", "index", "text"])

# cells a user's file may hold as text: plain, look-alike ids, unicode digits, huge numbers
TEXT_CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["7", "007", " 7", "7.0", "-1", "0", "1", "²", "١٢", "A", "b", " B ", "E", "NaN", "null", "None", "",
                     "\ufeffq", "[1, 2]", "9" * 5000, "5" * 40]),
)
JSON_CELLS = st.one_of(
    TEXT_CELLS, st.none(), st.booleans(), st.integers(-10, 10), st.integers(-10**30, 10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


IDS = st.sampled_from(["7", "007", " 7", "7.0", "q1", "Q1", "²", "١", "9" * 5000, "12345678901234567890", "0", "00"])


@st.composite
def good_row(draw, kind: str) -> dict[str, Any]:
    """A row the reader must accept alone (ids from a small pool of look-alikes, so
    files hold duplicates and near-duplicates)."""
    options = draw(st.lists(st.text(min_size=1, max_size=8).filter(str.strip), min_size=4, max_size=4, unique_by=str.strip))
    index = draw(st.integers(0, 3))
    answer = {"letter": draw(st.sampled_from(["ABCD"[index], "abcd"[index], f" {'ABCD'[index]} "])),
              "index": str(index), "text": options[index]}[kind]
    return {"qid": draw(st.one_of(IDS, st.integers(0, 50))), "prompt": draw(st.text(min_size=1, max_size=30).filter(str.strip)),
            **dict(zip(COLUMNS[2:6], options)), "correct": answer, "topic": draw(st.text(max_size=8))}


@st.composite
def spoiled_row(draw, kind: str, cells: st.SearchStrategy) -> dict[str, Any]:
    """A good row with up to two cells replaced by ``cells`` (now and then none)."""
    row = draw(good_row(kind))
    for column in draw(st.lists(st.sampled_from(COLUMNS), max_size=2)):
        row[column] = draw(cells)
    return row


def outcome(tmp_path: Path, data: Path, kind: str) -> list[dict] | None:
    """The records, or ``None`` after checking the refusal is one ``TaskError`` line."""
    task = tmp_path / "p.toml"
    task.write_text(TASK.format(kind=kind))
    try:
        return resolve_task(str(task), str(data)).questions(None)
    except TaskError as exc:
        message = str(exc)
        assert message and "\n" not in message and str(data) in message, message
        return None


def same_text(record_value: str, cell: Any) -> bool:
    """Whether a record's text is the cell as the file holds it (text trimmed, a number
    by its value)."""
    if isinstance(cell, str):
        return record_value == cell.strip()
    if isinstance(cell, bool) or not isinstance(cell, (int, float)):
        return False
    return math.isfinite(cell) and float(record_value) == float(cell)


def check_record(record: dict, raw: dict, kind: str) -> None:
    """Every value of ``record`` is one the row ``raw`` holds (see the module notes)."""
    assert record["question"] == raw["prompt"] and record["question"].strip()
    assert len(record["options"]) == 4
    for option, column in zip(record["options"], COLUMNS[2:6]):
        assert option and same_text(option, raw[column]), (option, raw[column])
    index = record["answer_index"]
    assert record["answer"] == OPTION_LETTERS[index]
    answer = raw["correct"]
    if kind == "letter":
        assert str(answer).strip().upper() == record["answer"]
    elif kind == "index":
        # the reader's rule: up to three ASCII digits spell the index ("00" is 0; "²" and "١" are no index)
        text = str(answer).strip()
        assert (text.isascii() and text.isdigit() and len(text) <= 3 and int(text) == index) or (
            isinstance(answer, int) and not isinstance(answer, bool) and answer == index)
    else:
        assert same_text(record["options"][index], answer)
    assert same_text(record["category"], raw["topic"])
    ident, cell = record["question_id"], raw["qid"]
    if isinstance(ident, int):
        assert (isinstance(cell, int) and not isinstance(cell, bool) and cell == ident) or (
            isinstance(cell, str) and cell.strip() == str(ident))
    else:
        assert isinstance(cell, str) and ident == cell.strip()


def check_ids_apart(records: list[dict]) -> None:
    ids = [r["question_id"] for r in records]
    assert len(set(ids)) == len(ids)


# ------------------------------------------------------------------ CSV


@st.composite
def csv_files(draw, kind: str) -> tuple[bytes, list[list[str]]]:
    """CSV bytes and the table written into them (a BOM, ragged rows and blank lines now and then)."""
    header = COLUMNS if draw(st.booleans()) else draw(st.permutations(COLUMNS))
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        row = draw(spoiled_row(kind, TEXT_CELLS))
        cells = [row[c] if isinstance(row[c], str) else str(row[c]) for c in header]
        if draw(st.integers(0, 7)) == 0:  # ragged
            cells = cells[: draw(st.integers(0, len(cells)))] + draw(st.lists(TEXT_CELLS, max_size=2))
        rows.append(cells)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data, [header, *rows]


def test_index_answers_are_read_by_the_readers_rule(tmp_path):
    """Found by the CSV property below: "00" is index 0 (up to three ASCII digits), and the
    checker above must accept what the reader's rule accepts; "²" and "١" are no index."""
    rows = "qid,prompt,opt_a,opt_b,opt_c,opt_d,correct,topic\n0,q,w,x,y,z,00,t\n1,q,w,x,y,z,002,t\n"
    path = tmp_path / "d.csv"
    path.write_text(rows)
    records = outcome(tmp_path, path, "index")
    assert [r["answer_index"] for r in records] == [0, 2]
    for record, cells in zip(records, [r.split(",") for r in rows.splitlines()[1:]]):
        check_record(record, dict(zip(COLUMNS, cells)), "index")
    for cell in ("²", "١"):
        path.write_text(f"qid,prompt,opt_a,opt_b,opt_c,opt_d,correct,topic\n0,q,w,x,y,z,{cell},t\n")
        assert outcome(tmp_path, path, "index") is None


@SETTINGS
@given(draws=st.data(), kind=KINDS)
def test_any_csv_gives_its_own_values_or_one_line(tmp_path, draws, kind):
    data, table = draws.draw(csv_files(kind))
    path = tmp_path / "d.csv"
    path.write_bytes(data)
    records = outcome(tmp_path, path, kind)
    if records is None:
        return
    header, rows = table[0], [r for r in table[1:] if r]
    assert all(len(r) == len(header) for r in rows), "a ragged row was read"
    assert len(records) == len(rows)
    for record, cells in zip(records, rows):
        check_record(record, dict(zip(header, cells)), kind)
    check_ids_apart(records)


# ------------------------------------------------------------------ JSONL


@st.composite
def jsonl_files(draw, kind: str) -> tuple[str, list[dict | None]]:
    """JSONL text and each line's object (``None``: a line that is not an object)."""
    lines, objects = [], []
    for _ in range(draw(st.integers(0, 4))):
        row = draw(spoiled_row(kind, JSON_CELLS))
        if draw(st.integers(0, 9)) == 0:
            del row[draw(st.sampled_from(COLUMNS))]
        ascii_only = draw(st.booleans())
        line = json.dumps(row, ensure_ascii=ascii_only)
        choice = draw(st.integers(0, 19))
        if choice == 0:
            line, row = line[: draw(st.integers(0, len(line) - 1))], None  # truncated
        elif choice == 1:
            line, row = json.dumps(draw(JSON_CELLS)), None  # not an object
        elif choice == 2 and "qid" in row:  # an id beyond Python's int limit
            spoiled = line.replace(f'"qid": {json.dumps(row["qid"], ensure_ascii=ascii_only)}', '"qid": ' + "9" * 5000, 1)
            line, row = (spoiled, None) if spoiled != line else (line, row)
        lines.append(line)
        objects.append(row)
    text = "\n".join(lines)
    return ("\ufeff" + text if draw(st.booleans()) else text), objects


@SETTINGS
@given(draws=st.data(), kind=KINDS)
def test_any_jsonl_gives_its_own_values_or_one_line(tmp_path, draws, kind):
    text, objects = draws.draw(jsonl_files(kind))
    path = tmp_path / "d.jsonl"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    records = outcome(tmp_path, path, kind)
    if records is None:
        return
    kept = [o for o, line in zip(objects, text.lstrip("\ufeff").split("\n")) if line.strip()]
    assert None not in kept, "a broken line or a non-object was read"
    assert len(records) == len(kept)
    for record, raw in zip(records, kept):
        assert set(COLUMNS) <= set(raw), "a row with a missing column was read"
        check_record(record, raw, kind)
    check_ids_apart(records)


# ------------------------------------------------------------------ parquet


@st.composite
def parquet_tables(draw, kind: str) -> dict[str, list]:
    """Good rows as typed columns (parquet is typed), then now and then one column
    spoiled: nulls in it, integers or lists instead of text, look-alike text."""
    rows = draw(st.lists(good_row(kind), min_size=1, max_size=4))
    columns = {c: [r[c] for r in rows] for c in COLUMNS}
    columns["qid"] = columns["qid"] if all(isinstance(v, int) for v in columns["qid"]) else [str(v) for v in columns["qid"]]
    for column in draw(st.lists(st.sampled_from(COLUMNS), max_size=2)):
        spoil = draw(st.sampled_from(["null", "int", "list", "text"]))
        if spoil == "null":
            columns[column] = [None if draw(st.booleans()) else str(v) for v in columns[column]]
        elif spoil == "int":
            columns[column] = [draw(st.integers(-(2**63), 2**63 - 1) | st.integers(-2, 5)) for _ in rows]
        elif spoil == "list":
            columns[column] = [draw(st.lists(st.one_of(st.none(), st.text(max_size=3)), max_size=5)) for _ in rows]
        else:
            columns[column] = [draw(TEXT_CELLS) for _ in rows]
    return columns


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(draws=st.data(), kind=KINDS)
def test_any_parquet_gives_its_own_values_or_one_line(tmp_path, draws, kind):
    columns = draws.draw(parquet_tables(kind))
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table(columns), path)
    records = outcome(tmp_path, path, kind)
    if records is None:
        return
    raws = [dict(zip(columns, values)) for values in zip(*columns.values())]
    assert len(records) == len(raws)
    for record, raw in zip(records, raws):
        check_record(record, raw, kind)
    check_ids_apart(records)
