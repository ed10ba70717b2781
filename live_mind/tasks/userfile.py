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


def read_table(path: Path, fmt: str) -> tuple[list[str] | None, Rows]:
    """``(header, rows)`` of a data file; ``header`` is ``None`` for JSONL (keys per row)."""
    try:
        if fmt == "csv":
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                rows = list(reader)
                return list(reader.fieldnames or []), rows
        if fmt == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            return table.column_names, table.to_pylist()
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                value = json.loads(line)
                if not isinstance(value, dict):
                    raise TaskError(f"{path} line {number}: not a JSON object")
                rows.append(value)
        return None, rows
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, TaskError):
            raise
        raise TaskError(f"cannot read {path} as {fmt}: {exc}".replace("\n", " ")) from None
    except Exception as exc:  # pyarrow's errors for a damaged parquet file
        raise TaskError(f"cannot read {path} as {fmt}: {exc}".replace("\n", " ")) from None


def _identity(value: Any) -> int | str:
    """An id as JSON keeps it: an int for integers and digit strings (so CSV and JSONL
    copies of one file give the same records), else the text."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return int(value)
    return str(value).strip()


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
        if not isinstance(question, str) or not question.strip():
            raise bad(self.question, "empty question")
        options: list[str] = []
        if self.kind != "free":
            values = raw[self.options] if isinstance(self.options, str) else [raw[c] for c in self.options]
            if isinstance(self.options, str) and isinstance(values, str):
                try:
                    values = json.loads(values)  # a CSV cell holding a JSON list
                except ValueError:
                    raise bad(self.options, "not a list of options") from None
            if not isinstance(values, (list, tuple)) or not 1 <= len(values) <= len(OPTION_LETTERS):
                raise bad(str(self.options), f"expected a list of 1-{len(OPTION_LETTERS)} options")
            options = [str(v).strip() for v in values]
            if any(not o for o in options):
                raise bad(str(self.options), "empty option")
        answer, index = self._answer(raw[self.answer], options, bad)
        return tagged({
            "question_id": _identity(raw[self.id]) if self.id else number - 1,
            "question": question, "options": options, "answer": answer, "answer_index": index,
            "cot_content": "", "category": str(raw[self.category]).strip() if self.category else self.name,
            "src": self.name,
        }, self.name, "free" if self.kind == "free" else "letter")

    def _answer(self, value: Any, options: list[str], bad: Any) -> tuple[str, int | None]:
        text = "" if value is None else str(value).strip()
        if not text:
            raise bad(self.answer, "empty answer")
        if self.kind == "free":
            return text, None
        letters = OPTION_LETTERS[: len(options)]
        if self.kind == "letter":
            index = letters.find(text.upper()) if len(text) == 1 else -1
        elif self.kind == "index":
            index = int(text) if text.lstrip("-").isdigit() and 0 <= int(text) < len(options) else -1
        else:
            index = options.index(text) if text in options else -1
        if index < 0:
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
