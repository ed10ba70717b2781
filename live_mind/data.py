"""MMLU-Pro questions for LiveMind runs (paper §4.1).

The paper evaluates on MMLU-Pro, 100 questions per category drawn with seed 42
(1,400 questions over the 14 categories).  This module loads MMLU-Pro rows, selects
the per-category subset, and renders the options block shown to the model.

Decisions:

* A *source* is one of three things.  ``None`` is the small sample set bundled with
  the package (``sample_questions.json``: one original question per category, so a
  run works with no download at all).  An existing local path -- a folder in the
  Hugging Face hub layout (``data/test-*.parquet``), a folder holding ``*.parquet``
  files directly, or a single ``.parquet`` file -- is read through ``datasets``
  without touching the network.  Anything else is a hub dataset id (for instance
  ``TIGER-Lab/MMLU-Pro``) handed to ``datasets.load_dataset``.
* ``validate_data_path`` does only cheap checks (existence, parquet files, column
  schema read from the parquet footers) so that command-line tools can reject a bad
  path *before* spending tens of seconds loading a model.
* Rows come back as plain dicts with exactly the MMLU-Pro columns (``options`` a
  ``list[str]``, ``answer_index`` an ``int``, ``cot_content`` a ``str``), which is
  also the leading part of every output record (schema in ``records.py``).
* Every problem with the data is a ``DataError`` (a ``ValueError``) with a one-line
  message.
"""

from __future__ import annotations

import json
import os
import random
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

from .models.base import error_line

MMLU_PRO_COLUMNS: tuple[str, ...] = (
    "question_id",
    "question",
    "options",
    "answer",
    "answer_index",
    "cot_content",
    "category",
    "src",
)
MMLU_PRO_CATEGORIES: tuple[str, ...] = (
    "computer science", "math", "chemistry", "engineering", "law", "biology", "health",
    "physics", "business", "philosophy", "economics", "other", "psychology", "history",
)
OPTION_LETTERS = "ABCDEFGHIJ"
SAMPLE_FILE = "sample_questions.json"


class DataError(ValueError):
    """The question data cannot be used (missing path, no parquet, wrong schema, bad row)."""


# --------------------------------------------------------------------------- paths


def parquet_files(path: str | os.PathLike[str], split: str = "test") -> list[Path]:
    """The parquet files a local ``path`` stands for (see module notes), sorted.

    Hub layout ``data/<split>-*.parquet`` wins over ``*.parquet`` directly in the folder.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"data path does not exist: {p}")
    if p.is_file():
        if p.suffix != ".parquet":
            raise DataError(f"data file is not a .parquet file: {p}")
        return [p]
    files = sorted((p / "data").glob(f"{split}-*.parquet")) or sorted(p.glob("*.parquet"))
    if not files:
        raise DataError(
            f"no parquet files in {p}: expected the hub layout data/{split}-*.parquet "
            "or *.parquet directly in the folder"
        )
    return files


def validate_data_path(path: str | os.PathLike[str], split: str = "test") -> None:
    """Cheap checks on a local MMLU-Pro path, meant to run before any model loads.

    Raises ``DataError`` when the path is missing, holds no parquet files, or a
    file lacks MMLU-Pro columns.  Reads only the parquet footers (the schema).
    """
    check_columns(parquet_files(path, split), MMLU_PRO_COLUMNS, "MMLU-Pro")


def check_columns(files: Sequence[Path], columns: Sequence[str], what: str) -> None:
    """``DataError`` unless every parquet file's schema (its footer) has ``columns``."""
    import pyarrow.parquet as pq

    for file in files:
        try:
            names = set(pq.read_schema(file).names)
        except Exception as exc:  # pyarrow raises several types for a corrupt file
            raise DataError(f"cannot read parquet schema of {file}: {exc}") from None
        missing = [c for c in columns if c not in names]
        if missing:
            raise DataError(f"{file} is not {what} data: missing column(s) {', '.join(missing)}")


def _looks_like_path(source: str) -> bool:
    """Whether a non-existent ``source`` was meant as a local path, not a hub id."""
    return (
        source.endswith(".parquet")
        or source.startswith((".", "/", "~"))
        or "\\" in source
        or source.count("/") > 1
    )


def is_local_source(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` is a local path (existing, or clearly meant as one), not a hub id."""
    text = os.fspath(source)
    return os.path.exists(os.path.expanduser(text)) or _looks_like_path(text)


# --------------------------------------------------------------------------- rows


def to_record(row: dict[str, Any]) -> dict[str, Any]:
    """One MMLU-Pro row as a plain dict with the MMLU-Pro columns and Python types."""
    missing = [c for c in MMLU_PRO_COLUMNS if c not in row]
    if missing:
        raise DataError(f"row is not MMLU-Pro data: missing column(s) {', '.join(missing)}")
    options = [str(o) for o in row["options"]]
    qid = row["question_id"]
    if not 1 <= len(options) <= len(OPTION_LETTERS):
        raise DataError(f"question {qid}: {len(options)} options (expected 1-{len(OPTION_LETTERS)})")
    index = int(row["answer_index"])
    answer = str(row["answer"])
    if not 0 <= index < len(options) or OPTION_LETTERS[index] != answer:
        raise DataError(f"question {qid}: answer {answer!r} / answer_index {index} do not match its {len(options)} options")
    return {
        "question_id": int(qid),
        "question": str(row["question"]),
        "options": options,
        "answer": answer,
        "answer_index": index,
        "cot_content": str(row["cot_content"] or ""),
        "category": str(row["category"]),
        "src": str(row["src"] or ""),
    }


def _records(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [to_record(row) for row in rows]


def load_sample_questions() -> list[dict[str, Any]]:
    """The bundled sample set: one short original question per MMLU-Pro category."""
    text = resources.files("live_mind").joinpath(SAMPLE_FILE).read_text(encoding="utf-8")
    return _records(json.loads(text))


def load_questions(
    source: str | os.PathLike[str] | None,
    split: str = "test",
    cache_dir: str | None = None,
) -> list[dict[str, Any]]:
    """MMLU-Pro questions from ``source`` (see module notes) as plain dicts.

    ``None`` gives the bundled sample set; a local folder or ``.parquet`` file is read
    offline; any other string is a hub dataset id loaded with
    ``datasets.load_dataset(source, split=split)``.  ``cache_dir`` is passed to
    ``datasets`` (its default cache when ``None``).
    """
    if source is None:
        return load_sample_questions()
    import datasets  # slow import; only needed here

    text = os.fspath(source)
    if is_local_source(text):
        validate_data_path(text, split)
        files = [str(f) for f in parquet_files(text, split)]
        dataset = datasets.load_dataset(
            "parquet", data_files={split: files}, split=split, cache_dir=cache_dir
        )
    else:
        try:
            dataset = datasets.load_dataset(text, split=split, cache_dir=cache_dir)
        except Exception as exc:
            reason = error_line(exc)
            raise DataError(
                f"cannot load {text!r} (split {split!r}): no such local path, and the hub says: {reason}"
            ) from None
        missing = [c for c in MMLU_PRO_COLUMNS if c not in dataset.column_names]
        if missing:
            raise DataError(f"dataset {text!r} is not MMLU-Pro: missing column(s) {', '.join(missing)}")
    return _records(dataset)


# --------------------------------------------------------------------------- selection

PROCEDURES: tuple[str, ...] = ("v1", "per-category")
Procedure = Literal["v1", "per-category"]


def category_rank(category: str) -> int:
    """Position of ``category`` in the paper's fixed category order (others after)."""
    try:
        return MMLU_PRO_CATEGORIES.index(category)
    except ValueError:
        return len(MMLU_PRO_CATEGORIES)


def _grouped(rows: Sequence[dict[str, Any]], fixed_order: bool) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by category, input order inside a group; groups in the paper's
    category order (unknown categories after, first seen first) or in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["category"], []).append(row)
    if fixed_order:
        groups = dict(sorted(groups.items(), key=lambda item: category_rank(item[0])))  # stable
    return groups


def select_questions(
    rows: Sequence[dict[str, Any]],
    per_category: int | None,
    seed: int = 42,
    procedure: Procedure = "v1",
) -> list[dict[str, Any]]:
    """The evaluation subset: ``per_category`` questions from each category.

    Procedure ``"v1"`` (the default; the paper's, §4.1 -- 100 per category, seed 42):

    1. Put the rows in ``question_id`` order (the order of the MMLU-Pro test split).
    2. Shuffle the whole list once with the permutation
       ``numpy.random.default_rng(seed).permutation(len(rows))``, which is what
       ``datasets.Dataset.shuffle(seed=seed)`` applies.
    3. For each category in the fixed order computer science, math, chemistry,
       engineering, law, biology, health, physics, business, philosophy, economics,
       other, psychology, history (then any other category, first seen first), keep
       the first ``per_category`` rows of that category in shuffled order.

    On the full MMLU-Pro test split with 100 and seed 42 this gives the 1,400 questions
    of the published v1 runs, in their record order.

    Procedure ``"per-category"`` (an earlier option of this toolkit): categories in
    first-seen order of ``rows``; each category's rows, in input order, shuffled with a
    fresh ``random.Random(seed)``, and the first ``per_category`` kept -- so a
    category's pick does not depend on which other categories are present.

    ``per_category=None`` keeps every row, unshuffled, grouped by category (in the
    fixed order under ``"v1"``).  The same input, count and seed always give the same
    selection.
    """
    if per_category is not None and per_category < 0:
        raise ValueError(f"per_category must be >= 0 or None, got {per_category}")
    if procedure not in PROCEDURES:
        raise ValueError(f"unknown procedure {procedure!r}; choose {' or '.join(PROCEDURES)}")
    v1 = procedure == "v1"
    if per_category is None:
        return [row for group in _grouped(rows, v1).values() for row in group]
    if v1:
        import numpy as np

        ordered = sorted(rows, key=lambda row: row["question_id"])
        shuffled = [ordered[int(i)] for i in np.random.default_rng(seed).permutation(len(ordered))]
        return [row for group in _grouped(shuffled, True).values() for row in group[:per_category]]
    selected: list[dict[str, Any]] = []
    for group in _grouped(rows, False).values():
        group = list(group)
        random.Random(seed).shuffle(group)
        selected.extend(group[:per_category])
    return selected


# --------------------------------------------------------------------------- rendering


def format_options(options: Sequence[str]) -> str:
    """The options block: ``Options are:`` then one ``(A): text`` line per option; empty
    for a question without options (a free-form task)."""
    if not options:
        return ""
    if len(options) > len(OPTION_LETTERS):
        raise DataError(f"{len(options)} options; at most {len(OPTION_LETTERS)} (A-J) are supported")
    lines = ["Options are:"]
    lines += [f"({OPTION_LETTERS[i]}): {option}" for i, option in enumerate(options)]
    return "\n".join(lines)


def typed_options(options: Sequence[str]) -> str:
    """The options as the v1 simulated user types them: the options block with a
    newline after every option, the last one included (one character more than
    ``format_options``, which is what the model is shown); nothing without options."""
    return format_options(options) + "\n" if options else ""


def format_question_with_options(question: str, options: Sequence[str]) -> str:
    """The full question text followed by its options block on the next line."""
    return f"{question.strip()}\n{format_options(options)}"
