"""A task file (TOML) describing the user's own questions: JSONL, CSV or parquet.

Example (``examples/task_capitals.toml``)::

    name = "capitals"               # default: the task file's name
    answer_kind = "letter"          # letter | index | text (multiple choice) | free
    data = "capitals.csv"           # optional; --data_path wins; relative to this file
    format = "csv"                  # optional; from the data file's extension
    [columns]
    question = "prompt"
    options = ["A", "B", "C", "D"]  # several columns, or one list column: options = "choices"
    answer = "correct"
    id = "qid"                      # optional (default: the row's index, from 0)
    category = "topic"              # optional (default: the task's name)

Every row is read and checked here, before any model loads; each problem is one line
naming the file, the row (1 = the first data row) and the column: a missing column, an
empty question, an answer that is not among the options, a duplicate id.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from ..data import OPTION_LETTERS
from ..tomlfile import read_toml
from .base import Rows, Task, TaskError, per_category, tagged, without_data
from .texts import FREE_SWAP

KINDS = ("letter", "index", "text", "free")
FORMATS = ("jsonl", "csv", "parquet")
KEYS = {"name", "answer_kind", "data", "format", "columns"}
COLUMN_KEYS = {"question", "options", "answer", "id", "category"}
MAX_INT_DIGITS = 4000
"""Longer digit strings stay text (Python converts at most 4,300 digits)."""
TEXT_ENCODING = "utf-8-sig"
"""CSV and JSONL files: UTF-8, with or without the byte-order mark spreadsheets write."""


def read_table(path: Path, fmt: str) -> tuple[list[str] | None, Rows]:
    """``(header, rows)`` of a data file; ``header`` is ``None`` for JSONL (keys per row).
    Text files may start with a byte-order mark (spreadsheets' "CSV UTF-8" writes one)."""
    try:
        if fmt == "csv":
            return _read_csv(path)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            return table.column_names, table.to_pylist()
        return None, _read_jsonl(path)
    except TaskError:
        raise
    except Exception as exc:  # OSError, UnicodeDecodeError, csv.Error, pyarrow's errors for a damaged parquet file
        raise TaskError(f"cannot read {path} as {fmt}: {exc}".replace("\n", " ")) from None


def _read_csv(path: Path) -> tuple[list[str], Rows]:
    """The header and rows; a row with fewer or more cells than the header is refused
    (``csv.DictReader`` would fill missing cells with ``None`` and hide extra ones)."""
    with path.open(newline="", encoding=TEXT_ENCODING) as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        rows = []
        for number, cells in enumerate(reader, 1):
            if not cells:
                continue  # a blank line, skipped as DictReader skips it
            if len(cells) != len(header):
                raise TaskError(f"{path} row {number}: {len(cells)} cells, the header has {len(header)}")
            rows.append(dict(zip(header, cells)))
    return header, rows


def _read_jsonl(path: Path) -> Rows:
    """One JSON object per line; an error names the file's line.  Lines end at ``\n``
    only: JSON text may hold other line separators (U+2028) inside its strings."""
    rows = []
    for number, line in enumerate(path.read_text(encoding=TEXT_ENCODING).split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except RecursionError:
            raise TaskError(f"{path} line {number}: JSON nested too deeply") from None
        except ValueError as exc:
            message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)  # both one line
            raise TaskError(f"{path} line {number}: not JSON: {message}") from None
        if not isinstance(value, dict):
            raise TaskError(f"{path} line {number}: not a JSON object")
        rows.append(value)
    return rows


def _identity(value: Any) -> int | str:
    """An id as JSON keeps it: an int for integers and for digit strings that read back
    as the same text (so CSV and JSONL copies of one file give the same records), else
    the text: ``007`` stays apart from ``7``, and ``²`` or 5,000 digits stay text."""
    if isinstance(value, int):
        return value
    text = value.strip()
    if text.isascii() and text.isdigit() and len(text) <= MAX_INT_DIGITS and str(int(text)) == text:
        return int(text)
    return text


def _scalar(value: Any) -> str | None:
    """A cell as text: strings (trimmed), integers and finite numbers; ``None`` for
    anything else (null, true/false, lists, objects, NaN), which no column may hold."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)  # JSON's reader and parquet's int64 bound its length
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return None


def _kind(value: Any) -> str:
    """How an unusable cell is named in an error."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return {list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


class Mapping:
    """The ``[columns]`` table and answer kind of a task file, applied to rows."""

    def __init__(self, spec: dict[str, Any], kind: str, name: str, where: str) -> None:
        self.kind, self.name, self.where = kind, name, where
        self.question = self._column(spec, "question")
        self.answer = self._column(spec, "answer")
        self.id, self.category = spec.get("id"), spec.get("category")
        options = spec.get("options")
        if kind == "free" and options is not None:
            raise TaskError(f"{where}: answer_kind free takes no options column")
        if kind != "free" and not (isinstance(options, str) or (isinstance(options, list) and options
                                                              and all(isinstance(o, str) for o in options))):
            raise TaskError(f"{where}: columns.options must be a column name or a list of column names")
        if isinstance(options, list) and len(options) > len(OPTION_LETTERS):
            raise TaskError(f"{where}: at most {len(OPTION_LETTERS)} option columns")
        self.options = options

    def _column(self, spec: dict[str, Any], key: str) -> str:
        value = spec.get(key)
        if not isinstance(value, str) or not value:
            raise TaskError(f"{self.where}: columns.{key} must name a column")
        return value

    def columns(self) -> list[str]:
        listed = [self.question, self.answer, self.id, self.category]
        listed += self.options if isinstance(self.options, list) else [self.options]
        return [c for c in listed if c]

    def row(self, source: str, number: int, raw: dict[str, Any]) -> dict[str, Any]:
        """One data row in the MMLU-Pro shape; ``number`` counts data rows from 1."""
        def bad(column: str, message: str) -> TaskError:
            return TaskError(f"{source} row {number} column {column!r}: {message}")

        for column in self.columns():
            if column not in raw:
                raise bad(column, "missing column")
        question = raw[self.question]
        if not isinstance(question, str):
            raise bad(self.question, f"the question is {_kind(question)}, not text")
        if not question.strip():
            raise bad(self.question, "empty question")
        options: list[str] = []
        if self.kind != "free":
            options = self._options(raw, bad)
        answer, index = self._answer(raw[self.answer], options, bad)
        return tagged({
            "question_id": self._id(raw, number, bad),
            "question": question, "options": options, "answer": answer, "answer_index": index,
            "cot_content": "", "category": self._category(raw, bad),
            "src": self.name,
        }, self.name, "free" if self.kind == "free" else "letter")

    def _options(self, raw: dict[str, Any], bad: Any) -> list[str]:
        values = raw[self.options] if isinstance(self.options, str) else [raw[c] for c in self.options]
        if isinstance(self.options, str) and isinstance(values, str):
            try:
                values = json.loads(values)  # a CSV cell holding a JSON list
            except (ValueError, RecursionError):
                raise bad(self.options, "not a list of options") from None
        if not isinstance(values, (list, tuple)) or not 1 <= len(values) <= len(OPTION_LETTERS):
            raise bad(str(self.options), f"expected a list of 1-{len(OPTION_LETTERS)} options")
        options = []
        for place, value in enumerate(values):
            text = _scalar(value)
            column = self.options[place] if isinstance(self.options, list) else self.options
            if text is None:
                raise bad(column, f"option {place + 1} is {_kind(value)}, not text")
            if not text:
                raise bad(column, "empty option")
            options.append(text)
        return options

    def _id(self, raw: dict[str, Any], number: int, bad: Any) -> int | str:
        if not self.id:
            return number - 1
        value = raw[self.id]
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise bad(self.id, f"the id is {_kind(value)}; ids are text or whole numbers")
        if isinstance(value, str) and not value.strip():
            raise bad(self.id, "empty id")
        return _identity(value)

    def _category(self, raw: dict[str, Any], bad: Any) -> str:
        if not self.category:
            return self.name
        text = _scalar(raw[self.category])
        if text is None:
            raise bad(self.category, f"the category is {_kind(raw[self.category])}, not text")
        return text

    def _answer(self, value: Any, options: list[str], bad: Any) -> tuple[str, int | None]:
        text = _scalar(value)
        if text is None and value is not None:
            raise bad(self.answer, f"the answer is {_kind(value)}; answers are text or a number")
        if not text:
            raise bad(self.answer, "empty answer")
        if self.kind == "free":
            return text, None
        letters = OPTION_LETTERS[: len(options)]
        index: int | None
        if self.kind == "letter":
            index = {letter: place for place, letter in enumerate(letters)}.get(text.upper())
        elif self.kind == "index":
            whole = text.isascii() and text.isdigit() and len(text) <= 3  # "²" and 5,000 digits are no index
            index = int(text) if whole and int(text) < len(options) else None
        else:
            index = options.index(text) if text in options else None
        if index is None:
            raise bad(self.answer, f"answer {text!r} is not among the {len(options)} options ({self.kind})")
        return letters[index], index


def load_rows(path: Path, fmt: str, mapping: Mapping) -> Rows:
    """Every row of the data file, checked (see module notes)."""
    header, raw_rows = read_table(path, fmt)
    if header is not None:
        missing = [c for c in mapping.columns() if c not in header]
        if missing:
            raise TaskError(f"{path} row 0 (header) column {missing[0]!r}: missing column")
    rows, seen = [], {}
    for number, raw in enumerate(raw_rows, 1):
        row = mapping.row(str(path), number, raw)
        if row["question_id"] in seen:
            raise TaskError(f"{path} row {number} column {mapping.id!r}: duplicate id {row['question_id']!r} "
                            f"(first in row {seen[row['question_id']]})")
        seen[row["question_id"]] = number
        rows.append(row)
    if not rows:
        raise TaskError(f"{path}: no rows")
    return rows


def task(task_file: Path, data_path: str | None, need_data: bool = True) -> Task:
    """The task a TOML task file describes, with its data read and checked now."""
    where = f"task file {task_file}"
    spec = read_toml(task_file, TaskError, "task file")
    unknown = sorted(set(spec) - KEYS) + sorted(f"columns.{k}" for k in set(spec.get("columns") or {}) - COLUMN_KEYS)
    if unknown:
        raise TaskError(f"{where}: unknown key(s) {', '.join(unknown)}")
    kind = spec.get("answer_kind", "letter")
    if kind not in KINDS:
        raise TaskError(f"{where}: answer_kind must be one of {', '.join(KINDS)}, not {kind!r}")
    name = str(spec.get("name") or task_file.stem)
    if not isinstance(spec.get("columns"), dict):
        raise TaskError(f"{where}: a [columns] table is required (question, options, answer; optional id, category)")
    mapping = Mapping(spec["columns"], kind, name, where)
    answer_kind, swap = ("free", dict(FREE_SWAP)) if kind == "free" else ("letter", {})
    if data_path is None and not spec.get("data"):
        if not need_data:
            return without_data(Task(name, answer_kind, list, per_category, swap, mapping.category or "category"))
        raise TaskError(f"{where} names no data file: add data = \"FILE\" or pass --data_path FILE")
    path = Path(data_path).expanduser() if data_path is not None else task_file.parent / str(spec["data"])
    if not path.is_file():
        raise TaskError(f"data file does not exist: {path}")
    fmt = str(spec.get("format") or path.suffix.lstrip(".").lower())
    fmt = "jsonl" if fmt == "json" else fmt
    if fmt not in FORMATS:
        raise TaskError(f"{where}: data format must be one of {', '.join(FORMATS)} (from format = or the file's extension), not {fmt!r}")
    rows = load_rows(path, fmt, mapping)
    return Task(name, answer_kind, lambda: [dict(r) for r in rows], per_category, swap, mapping.category or "category")
