"""The ``Task`` a run works on, and the per-category selection of the non-MMLU-Pro tasks.

A task is data: its name, how its answers are scored (``answer_kind``, see
``scoring.py``), which prompt texts it swaps in (``texts.py``), and a loader that returns
question rows shaped like MMLU-Pro's (``question_id``, ``question``, ``options``,
``answer``, ``answer_index``, ``cot_content``, ``category``, ``src``) -- so the solvers,
the clock and the record schema stay as they are.  Rows of a task other than MMLU-Pro
also carry ``task`` and ``answer_kind``, which records keep after the v1 fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from ..data import DataError
from ..prompts import PromptSet

Rows = list[dict[str, Any]]
DEFAULT_TASK = "mmlu-pro"


class TaskError(DataError):
    """A task name, task file or data file that cannot be used (one-line message)."""


@dataclass(frozen=True)
class Task:
    """One dataset as the toolkit sees it.

    ``load()`` reads every row (already validated); ``select(rows, k, seed, procedure)``
    keeps ``k`` per category (``None``: all); ``swap`` maps a ``PromptSet`` field to the
    field whose text replaces it; ``answer_kind`` is ``None`` (MMLU-Pro, the paper's
    rule), ``"letter"`` or ``"free"``."""

    name: str
    answer_kind: str | None
    load: Callable[[], Rows]
    select: Callable[[Sequence[dict[str, Any]], int | None, int, str], Rows]
    swap: dict[str, str] = field(default_factory=dict)
    category_column: str = "category"

    @property
    def has_options(self) -> bool:
        return self.answer_kind != "free"

    def prompts(self, prompts: PromptSet) -> PromptSet:
        """The run's prompt set with this task's texts in the fields the builders read."""
        if not self.swap:
            return prompts
        return replace(prompts, **{target: getattr(prompts, source) for target, source in self.swap.items()})

    def questions(self, per_category: int | None, seed: int = 42, procedure: str = "v1") -> Rows:
        return self.select(self.load(), per_category, seed, procedure)


def per_category(rows: Sequence[dict[str, Any]], k: int | None, seed: int = 42, procedure: str = "v1") -> Rows:
    """``k`` rows per category: the rows (in file / split order) shuffled once with
    ``numpy.random.default_rng(seed).permutation`` -- the permutation ``datasets``'
    ``Dataset.shuffle(seed=seed)`` applies -- then each category's first ``k`` in that
    order, categories in order of first appearance in the file.  ``k=None``: every row
    in file order.  (``procedure`` is MMLU-Pro's option and is ignored here.)"""
    if k is None:
        return list(rows)
    import numpy as np

    shuffled = [rows[int(i)] for i in np.random.default_rng(seed).permutation(len(rows))]
    order = {row["category"]: None for row in rows}
    picked: dict[str, Rows] = {name: [] for name in order}
    for row in shuffled:
        if len(picked[row["category"]]) < k:
            picked[row["category"]].append(row)
    return [row for name in order for row in picked[name]]


def without_data(task: Task) -> Task:
    """``task`` whose loader says it has no data (the server, a keyboard session: only
    the task's prompts and scoring are used)."""
    def load() -> Rows:
        raise TaskError(f"task {task.name} has no data here: pass its data file")

    return replace(task, load=load)


def tagged(row: dict[str, Any], task: str, answer_kind: str) -> dict[str, Any]:
    """A row in the MMLU-Pro shape with the task's two fields appended."""
    return {**row, "task": task, "answer_kind": answer_kind}
