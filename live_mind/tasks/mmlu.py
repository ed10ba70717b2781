"""MMLU as the second version of the LiveMind paper ran it (``-d mmlu`` there).

Data: the ``cais/mmlu`` layout -- columns ``question``, ``subject``, ``choices`` (four
strings) and ``answer`` (an int 0-3).  A local folder in the hub layout
(``all/test-*.parquet``, or one folder per subject ``<subject>/test-*.parquet``, read in
sorted subject order, which is the order of ``all``), a folder of ``*.parquet`` or one
parquet file is read offline; any other string is a hub id loaded with
``datasets.load_dataset(id, "all", split="test")``.

Selection (that version's rule): the test split is shuffled once with ``datasets``'
``Dataset.shuffle(seed)`` (seed 42 by default), then each subject gives its first ``k``
rows in the shuffled order (``base.per_category``); a subject with fewer gives what it
has.  Records: ``question_id`` is the row's index in the test split (stable, so
``--resume`` works), ``category`` is the subject, ``answer`` the letter A-D, ``src``
``cais/mmlu``; the reply is scored with letters past D a miss (``scoring.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .. import data
from ..data import OPTION_LETTERS, is_local_source
from .base import Rows, Task, TaskError, per_category, tagged
from .texts import MMLU_SWAP

COLUMNS = ("question", "subject", "choices", "answer")
SOURCE = "cais/mmlu"


def parquet_files(path: str | os.PathLike[str], split: str = "test") -> list[Path]:
    """The parquet files of a local MMLU copy (see module notes), in split order: the
    hub's ``all/`` or per-subject folders, else what ``data.parquet_files`` finds."""
    p = Path(path).expanduser()
    if p.is_dir():
        files = sorted((p / "all").glob(f"{split}-*.parquet")) or sorted(p.glob(f"*/{split}-*.parquet"))
        if files:
            return files
    return data.parquet_files(p, split)


def validate(path: str) -> None:
    """Cheap checks before any model loads: files exist and have the cais/mmlu columns."""
    data.check_columns(parquet_files(path), COLUMNS, "MMLU (cais/mmlu layout)")


def to_row(index: int, row: dict[str, Any]) -> dict[str, Any]:
    """One cais/mmlu row in the MMLU-Pro shape."""
    choices = [str(c) for c in row["choices"]]
    answer = int(row["answer"])
    if not 0 <= answer < len(choices) <= len(OPTION_LETTERS):
        raise TaskError(f"MMLU row {index}: answer {answer} does not index its {len(choices)} choices")
    return tagged({
        "question_id": index, "question": str(row["question"]), "options": choices,
        "answer": OPTION_LETTERS[answer], "answer_index": answer, "cot_content": "",
        "category": str(row["subject"]), "src": SOURCE,
    }, "mmlu", "letter")


def load(source: str | None) -> Rows:
    """Every test row of ``source`` (a local copy or a hub id) in split order."""
    import datasets  # slow import; only needed here

    if source is None:
        raise TaskError("--task mmlu needs --data_path (a cais/mmlu parquet folder or the hub id cais/mmlu)")
    if is_local_source(source):
        validate(source)
        files = [str(f) for f in parquet_files(source)]
        dataset = datasets.load_dataset("parquet", data_files={"test": files}, split="test")
    else:
        try:
            dataset = datasets.load_dataset(source, "all", split="test")
        except Exception as exc:
            raise TaskError(f"cannot load {source!r}: no such local path, and the hub says: {exc}".replace("\n", " ")) from None
    return [to_row(i, row) for i, row in enumerate(dataset)]


def task_shape(source: str | None = None) -> Task:
    """The built-in ``mmlu`` task over ``source``, unchecked."""
    return Task("mmlu", "letter", lambda: load(source), per_category, dict(MMLU_SWAP), "subject")


def task(data_path: str | None) -> Task:
    """The built-in ``mmlu`` task over ``data_path`` (checked now if local)."""
    if data_path is None:
        raise TaskError("--task mmlu needs --data_path (a cais/mmlu parquet folder or the hub id cais/mmlu)")
    if is_local_source(data_path):
        validate(data_path)
    return task_shape(data_path)
