"""``--task NAME|FILE``: the one function the command line calls to get its task.

``NAME`` is a built-in: ``mmlu-pro`` (the default: the paper's data, selection, prompts
and parse rule, all in ``data.py`` / ``answer.py``, untouched) or ``mmlu`` (``mmlu.py``).
Anything else must be a TOML task file (``userfile.py``).  Every check runs here, before
any model loads; a problem raises ``TaskError`` with one line.
"""

from __future__ import annotations

from pathlib import Path

from .. import data
from . import mmlu, userfile
from .base import DEFAULT_TASK, Task, TaskError, without_data

BUILT_IN = (DEFAULT_TASK, "mmlu")


def mmlu_pro(data_path: str | None) -> Task:
    """MMLU-Pro as the paper ran it: ``data.load_questions`` + ``data.select_questions``."""
    if data_path is not None and data.is_local_source(data_path):
        data.validate_data_path(data_path)

    def select(rows, k, seed, procedure):  # noqa: ANN001, ANN202 - the data module's own signature
        return data.select_questions(rows, k, seed=seed, procedure=procedure)

    return Task(DEFAULT_TASK, None, lambda: data.load_questions(data_path), select)


def resolve_task(name_or_file: str | None, data_path: str | None, need_data: bool = True) -> Task:
    """The task ``--task`` names (``None``: MMLU-Pro) over ``--data_path``, validated.

    ``need_data=False`` (the live session without ``--replay``, the server): a task
    without data is fine -- only its prompts and its scoring are used."""
    name = name_or_file or DEFAULT_TASK
    if name == DEFAULT_TASK:
        return mmlu_pro(data_path)
    if name == "mmlu":
        return mmlu.task(data_path) if data_path is not None or need_data else without_data(mmlu.task_shape())
    path = Path(name).expanduser()
    if path.suffix.lower() != ".toml" and not path.exists():
        raise TaskError(f"unknown task {name!r}: built-in tasks are {', '.join(BUILT_IN)}, or give a task file (.toml)")
    if not path.is_file():
        raise TaskError(f"task file not found: {path}")
    return userfile.task(path, data_path, need_data)


def replay_row(task: Task, index: int) -> dict:
    """Row ``index`` of the task's data in file order (the live session's ``--replay``)."""
    rows = task.load()
    if not 0 <= index < len(rows):
        raise TaskError(f"--index {index} is outside the {len(rows)} questions of task {task.name}")
    return rows[index]
