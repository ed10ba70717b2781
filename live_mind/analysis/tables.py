"""Tables from solver output files (the paper's §4.2 tables and Fig. 8).

Input: one or more ``all.json`` files -- a JSON list of records as written by our
solvers or by the original authors (schema in ``records.py``).  Output: small tables
(``Table``) that the thin CLI scripts write as CSV in the authors' layout.

Decisions, each chosen to reproduce the authors' published CSVs to the last digit:

* Correctness is ``answer.is_correct(record["solution"], record["answer"])`` (for a record
  of another task, the rule its ``answer_kind`` names: ``tasks/scoring.py``); a record
  whose ``error`` is set counts as wrong (and is reported as failed).
* Accuracy is ``100 * correct / total``: of the ways to write it this is the one that
  gives the published cells (``correct / total * 100`` turns 55 into
  55.00000000000001).  Means are plain ``sum(values) / len(values)`` in record order;
  numpy / pandas reductions sum in another order and differ in the last bit.
* A question's *length* is its Punkt sentence count + 1 (the paper's "Length", which
  equals the number of model calls under LiveMind), counted once per distinct text
  (and in parallel for big files: Punkt is most of the cost).
* Groups keep first-seen order, after an ``All`` row.  Several files must hold the
  same questions: equal counts per category and per length, else ``AnalysisError``.
  Their columns are metric-major, as in the v1 scripts: ``File 1 Accuracy, File 2
  Accuracy, File 1 Latency, File 2 Latency, ...``.
* Cells are written with ``csv``'s default dialect: ``\\r\\n`` line ends and
  ``repr`` floats, as in the published files.  A mean over no values is an empty cell;
  a record without the measured field (e.g. a failed one without ``time_info``) is left
  out of that mean but still counts in ``Total`` and accuracy.

Actions (Fig. 8): ``actions.py``.
"""

from __future__ import annotations

import csv
import gc
import multiprocessing
import os
import sys
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..jsonfile import JSONFileError, read_json
from ..runfiles import RunFileError, latest_records, read_journal
from ..segment import count_sentences, punkt_tokenizer
from ..tasks.scoring import predict

ACTION_TYPES: tuple[str, ...] = ("background", "inference", "hypothesize", "wait", "unparsed")
Record = dict[str, Any]
Metric = Callable[["Run", Sequence[int]], float | int | None]  # (run, record indices) -> cell


class AnalysisError(ValueError):
    """Bad input for the analysis; the message is one line, fit for the user."""


@dataclass
class Run:
    """One loaded output file, with each record's length and correctness worked out once."""

    path: Path
    records: list[Record]
    lengths: list[int]
    correct: list[bool]

    @property
    def name(self) -> str:
        """``llama_3_70b_lm`` for ``.../llama_3_70b_lm/all.json``, else the file stem."""
        return self.path.parent.name if self.path.stem == "all" and self.path.parent.name else self.path.stem

    @property
    def failed(self) -> int:
        return sum(1 for r in self.records if is_failed(r))

    def has(self, metric: Callable[[Record], Any]) -> bool:
        return any(metric(r) is not None for r in self.records)


@dataclass
class Table:
    """A CSV-shaped table: a header and rows of str/int/float/None cells."""

    header: list[str]
    rows: list[list[Any]]

    def write_csv(self, path: Path) -> Path:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)  # excel dialect: \r\n, repr floats, like the authors
            writer.writerow(self.header)
            writer.writerows(self.rows)
        return path

    def format(self, digits: int = 2) -> str:
        """A fixed-width text rendering for the terminal."""
        def cell(v: Any) -> str:
            return "" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)

        text = [[str(h) for h in self.header], *[[cell(v) for v in row] for row in self.rows]]
        widths = [max(len(row[i]) for row in text) for i in range(len(self.header))]
        return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
                         for row in text)


# --- loading and per-record fields -------------------------------------------------

_LENGTHS: dict[str, int] = {}  # question text -> length; several files share their questions
PARALLEL_MIN = 3000  # distinct new questions from which counting is spread over processes


def question_length(question: str) -> int:
    """The paper's length: Punkt sentences + 1."""
    return question_lengths([question])[0]


def question_lengths(questions: Sequence[str]) -> list[int]:
    """Lengths of many questions, each distinct text counted once per process.

    Punkt is the main cost of the analysis (about 0.1 ms per question); a full
    MMLU-Pro run (12,032 questions) is counted in forked worker processes where
    there are several cores (Linux only; the results are the same either way).
    """
    todo = [q for q in dict.fromkeys(questions) if q not in _LENGTHS]
    workers = min(len(os.sched_getaffinity(0)), 4) if hasattr(os, "sched_getaffinity") else 1
    # fork only where it is safe: Linux, and no other thread that the child could inherit mid-lock
    if len(todo) >= PARALLEL_MIN and workers > 1 and sys.platform == "linux" and threading.active_count() == 1:
        punkt_tokenizer()  # built once, before the fork
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            counts = pool.map(count_sentences, todo, chunksize=-(-len(todo) // (4 * workers)))
    else:
        counts = [count_sentences(q) for q in todo]
    _LENGTHS.update(zip(todo, (c + 1 for c in counts)))
    return [_LENGTHS[q] for q in questions]


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: JSON of a full run is millions of new
    containers, which would set off repeated full collections (the load takes twice as
    long); records hold no reference cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_run(path: str | Path) -> Run:
    """Read and check one output file; ``AnalysisError`` on anything unusable.  A run's
    journal (``all.jsonl``) reads too -- the latest record of each question, a torn last
    line left out -- so a run still going, or stopped, can be looked at before its
    ``all.json`` is written."""
    path = Path(path)
    try:
        if path.suffix == ".jsonl" and not path.exists():  # the journal reader takes a missing file for an empty one
            raise FileNotFoundError(path)
        with _no_gc():
            data = latest_records(read_journal(path)) if path.suffix == ".jsonl" else read_json(path)
    except FileNotFoundError:
        raise AnalysisError(f"{path}: no such file") from None
    except OSError as exc:
        raise AnalysisError(f"{path}: cannot read ({exc})") from None
    except (JSONFileError, RunFileError) as exc:  # torn or truncated: names the byte offset
        raise AnalysisError(str(exc)) from None
    if not isinstance(data, list) or not data:
        raise AnalysisError(f"{path}: expected a non-empty JSON list of records")
    for i, record in enumerate(data):
        if not isinstance(record, dict):
            raise AnalysisError(f"{path}: record {i} is not a JSON object")
        for key, kind in (("question", str), ("category", str), ("answer", str)):
            if not isinstance(record.get(key), kind):
                raise AnalysisError(f"{path}: record {i} has no {kind.__name__} field {key!r}")
    return Run(path, data, question_lengths([r["question"] for r in data]), [is_record_correct(r) for r in data])


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    return [load_run(p) for p in paths]


def is_failed(record: Record) -> bool:
    return record.get("error") is not None


def is_record_correct(record: Record) -> bool:
    if is_failed(record):
        return False
    solution = record.get("solution")
    return predict(record, solution if isinstance(solution, str) else None)[1]


def _time_field(name: str) -> Callable[[Record], float | None]:
    def get(record: Record) -> float | None:
        info = record.get("time_info")
        value = info.get(name) if isinstance(info, dict) else None
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return get


latency = _time_field("latency")
gen_time = _time_field("total_gen_time")


def final_tokens(record: Record) -> int | None:
    """Completion tokens of the final (output) call = the last usage entry."""
    usage = record.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return tokens[-1] if isinstance(tokens, list) and tokens else None


# --- grouped metric tables ----------------------------------------------------------

def accuracy(run: Run, indices: Sequence[int]) -> float:
    """Percent correct, written ``100 * correct / total`` (matches the published cells)."""
    return 100 * sum(run.correct[i] for i in indices) / len(indices)


def mean_of(field_of: Callable[[Record], float | int | None]) -> Metric:
    """Plain ``sum / len`` over the records that have the field (None when none has)."""
    def metric(run: Run, indices: Sequence[int]) -> float | None:
        values = [v for v in (field_of(run.records[i]) for i in indices) if v is not None]
        return sum(values) / len(values) if values else None
    return metric


def groups(run: Run, by: str, with_all: bool = False) -> dict[Any, list[int]]:
    """Record indices per category or per length in first-seen order, after ``All`` if asked."""
    if by not in ("category", "length"):
        raise ValueError(f"unknown grouping {by!r}")
    keys = [r["category"] for r in run.records] if by == "category" else run.lengths
    out: dict[Any, list[int]] = {"All": list(range(len(keys)))} if with_all else {}
    for i, key in enumerate(keys):
        out.setdefault(key, []).append(i)
    return out


def check_agreement(runs: Sequence[Run]) -> None:
    """Several files must hold the same questions: same counts per category and length."""
    for by in ("category", "length"):
        first = Counter({k: len(v) for k, v in groups(runs[0], by).items()})
        for run in runs[1:]:
            other = Counter({k: len(v) for k, v in groups(run, by).items()})
            for key in [*first, *(k for k in other if k not in first)]:
                if first[key] != other[key]:
                    raise AnalysisError(
                        f"files disagree: {by} {key!r} has {other[key]} question(s) in {run.path} "
                        f"but {first[key]} in {runs[0].path}")


def metric_tables(runs: Sequence[Run], columns: Sequence[tuple[str, Metric]]) -> tuple[Table, Table]:
    """(by category, by length): ``Key, Total`` then ``File i <label>``, metric-major."""
    check_agreement(runs)
    tables = []
    for by, title in (("category", "Category"), ("length", "Length")):
        per_run = [groups(run, by, with_all=True) for run in runs]
        header = [title, "Total"] + [f"File {i} {label}" for label, _ in columns for i in range(1, len(runs) + 1)]
        rows = [[key, len(indices)] + [metric(run, g[key]) for _, metric in columns for run, g in zip(runs, per_run)]
                for key, indices in per_run[0].items()]
        tables.append(Table(header, rows))
    return tables[0], tables[1]


def time_info_tables(runs: Sequence[Run]) -> tuple[Table, Table]:
    """``timeinfo_by_category`` and ``timeinfo_by_len``: accuracy, latency, gen time."""
    for run in runs:
        if not run.has(latency):
            raise AnalysisError(f"{run.path}: no record has time_info (a batched run? use analyze_batched.py)")
    return metric_tables(runs, [("Accuracy", accuracy), ("Latency", mean_of(latency)),
                                ("Gen Time", mean_of(gen_time))])


def batched_tables(runs: Sequence[Run]) -> tuple[Table, Table]:
    """Like ``time_info_tables`` with mean final-call completion tokens instead of times."""
    for run in runs:
        if not run.has(final_tokens):
            raise AnalysisError(f"{run.path}: no record has usage.completion_tokens")
    return metric_tables(runs, [("Accuracy", accuracy), ("Tokens", mean_of(final_tokens))])
