"""Run files: atomic output, the JSONL journal and resume checks."""

from __future__ import annotations

import json

import pytest

from live_mind.runfiles import (
    RESUME_IGNORED_KEYS,
    RunFileError,
    RunWriter,
    config_differences,
    config_path,
    journal_path,
    library_versions,
    read_journal,
    write_json_atomic,
)

CONFIG = {"model": "smollm2-135m", "use_lm": True, "action_set": "CAS", "typing_speed": 0.25, "output_file": "x.json"}


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- paths and versions


def test_side_file_paths(tmp_path):
    out = tmp_path / "all.json"
    assert journal_path(out) == tmp_path / "all.jsonl"
    assert config_path(out) == tmp_path / "all.config.json"


def test_library_versions_lists_python_and_installed_packages():
    versions = library_versions()
    assert versions["python"].count(".") == 2
    assert "nltk" in versions


# --------------------------------------------------------------------------- atomic JSON


def test_write_json_atomic_writes_and_replaces(tmp_path):
    path = tmp_path / "sub" / "out.json"
    write_json_atomic(path, [{"a": 1}])
    assert json.loads(path.read_text(encoding="utf-8")) == [{"a": 1}]
    write_json_atomic(path, [{"a": 2}, {"b": "é"}])
    assert json.loads(path.read_text(encoding="utf-8")) == [{"a": 2}, {"b": "é"}]
    assert path.read_text(encoding="ascii").endswith("\n")  # ASCII-escaped, newline-terminated
    assert _leftovers(path.parent) == []


def test_write_json_atomic_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.json"
    write_json_atomic(path, [1, 2, 3])
    with pytest.raises(TypeError):
        write_json_atomic(path, [1, {"bad": object()}])  # fails half-way through dumping
    assert json.loads(path.read_text(encoding="utf-8")) == [1, 2, 3]
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- journal


def test_read_journal_missing_file_is_empty(tmp_path):
    assert read_journal(tmp_path / "none.jsonl") == []


def test_read_journal_ignores_a_torn_last_line_and_blank_lines(tmp_path):
    path = tmp_path / "all.jsonl"
    path.write_text('{"question_id": 1}\n\n{"question_id": 2}\n{"question_id": 3, "solu', encoding="utf-8")
    assert read_journal(path) == [{"question_id": 1}, {"question_id": 2}]


def test_read_journal_rejects_a_bad_middle_line(tmp_path):
    path = tmp_path / "all.jsonl"
    path.write_text('{"question_id": 1}\nnot json\n{"question_id": 3}\n', encoding="utf-8")
    with pytest.raises(RunFileError, match="line 2 is not valid JSON"):
        read_journal(path)


def test_writer_appends_durably_and_finishes_in_order(tmp_path):
    out = tmp_path / "all.json"
    writer = RunWriter.open(out, CONFIG, resume=False)
    assert json.loads(config_path(out).read_text(encoding="utf-8")) == CONFIG
    writer.append({"question_id": 3})
    writer.append_many([{"question_id": 1}, {"question_id": 2}])
    lines = journal_path(out).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"question_id": 3}, {"question_id": 1}, {"question_id": 2}]
    assert not out.exists()  # the final file appears only at the end
    assert writer.done_ids() == {1, 2, 3}
    records = writer.finish(order=[1, 2, 3])
    assert [r["question_id"] for r in records] == [1, 2, 3]
    assert json.loads(out.read_text(encoding="utf-8")) == records
    assert _leftovers(tmp_path) == []


def test_fresh_run_discards_an_old_journal(tmp_path):
    out = tmp_path / "all.json"
    journal_path(out).write_text('{"question_id": 9}\n', encoding="utf-8")
    writer = RunWriter.open(out, CONFIG, resume=False)
    assert writer.records == [] and not journal_path(out).exists()


# --------------------------------------------------------------------------- resume


def test_resume_skips_finished_and_drops_a_torn_line(tmp_path):
    out = tmp_path / "all.json"
    RunWriter.open(out, CONFIG, resume=False).append_many([{"question_id": 1}, {"question_id": 2}])
    with journal_path(out).open("a", encoding="utf-8") as handle:
        handle.write('{"question_id": 3, "sol')  # crash mid-write
    writer = RunWriter.open(out, {**CONFIG, "output_file": "elsewhere.json", "resume": True}, resume=True)
    assert writer.done_ids() == {1, 2}
    writer.append({"question_id": 3})
    assert read_journal(journal_path(out)) == [{"question_id": 1}, {"question_id": 2}, {"question_id": 3}]
    assert [r["question_id"] for r in writer.finish()] == [1, 2, 3]


def test_resume_without_earlier_files_starts_fresh(tmp_path):
    writer = RunWriter.open(tmp_path / "all.json", CONFIG, resume=True)
    assert writer.records == []


def test_resume_config_mismatch_names_the_keys(tmp_path):
    out = tmp_path / "all.json"
    RunWriter.open(out, CONFIG, resume=False).append({"question_id": 1})
    changed = {**CONFIG, "typing_speed": 0.5, "action_set": "SAS", "new_flag": 1, "versions": {"x": "2"}}
    with pytest.raises(RunFileError, match=r"the configuration differs in action_set, new_flag, typing_speed$") as exc:
        RunWriter.open(out, changed, resume=True)
    assert "\n" not in str(exc.value)
    assert read_journal(journal_path(out)) == [{"question_id": 1}]  # nothing was touched


def test_config_differences_ignores_run_bookkeeping():
    saved = {"a": 1, "b": [1, 2], **{k: "old" for k in RESUME_IGNORED_KEYS}}
    current = {"a": 1, "b": [1, 2], **{k: "new" for k in RESUME_IGNORED_KEYS}}
    assert config_differences(saved, current) == []
    assert config_differences({"a": 1}, {"a": 2, "c": None}) == ["a"]  # a missing key equals None
    assert config_differences({"a": {"x": 1}}, {"a": {"x": 2}, "d": 0}) == ["a", "d"]


def test_resume_with_the_same_config_holding_a_tuple(tmp_path):
    out = tmp_path / "all.json"
    config = {**CONFIG, "stop": ("\n\n", "###")}
    RunWriter.open(out, config, resume=False).append({"question_id": 1})
    assert RunWriter.open(out, config, resume=True).done_ids() == {1}


# --------------------------------------------------------------------------- faults: failed writes, torn lines, retries


def test_a_failed_journal_write_is_cut_back_and_the_journal_stays_whole(tmp_path, monkeypatch):
    import errno
    import os

    out = tmp_path / "all.json"
    writer = RunWriter.open(out, CONFIG, resume=False)
    writer.append({"question_id": 1})
    before = journal_path(out).read_bytes()
    real_write = os.write
    calls = {"n": 0}

    def half_then_full(fd, data):  # the disk fills part-way through the record
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(RunFileError, match="No space left on device.*whole, as before this write"):
        writer.append({"question_id": 2, "text": "x" * 100})
    monkeypatch.undo()
    assert journal_path(out).read_bytes() == before
    assert [r["question_id"] for r in writer.records] == [1]


def test_a_torn_last_line_is_reported_and_a_newline_ended_bad_last_line_is_not_torn(tmp_path):
    from live_mind.runfiles import read_journal_checked

    path = tmp_path / "all.jsonl"
    path.write_bytes(b'{"question_id": 1}\n{"question_id": 2, "tex')
    records, torn = read_journal_checked(path)
    assert records == [{"question_id": 1}] and "torn last line" in torn and "at byte 19" in torn
    path.write_bytes(b'{"question_id": 1}\n{"question_id": 2, "tex\n')  # complete line, yet damaged
    with pytest.raises(RunFileError, match="line 2 is not valid JSON"):
        read_journal_checked(path)


def test_retry_failed_counts_error_records_as_not_done_and_keeps_one_record_each(tmp_path):
    out = tmp_path / "all.json"
    writer = RunWriter.open(out, CONFIG, resume=False)
    writer.append_many([{"question_id": 1, "error": None}, {"question_id": 2, "error": "ModelError: x"},
                        {"question_id": 3, "error": None}])
    assert RunWriter.open(out, CONFIG, resume=True).done_ids() == {1, 2, 3}
    retry = RunWriter.open(out, CONFIG, resume=True, retry_failed=True)
    assert retry.done_ids() == {1, 3}
    retry.append({"question_id": 2, "error": None})
    assert [r["question_id"] for r in retry.finish()] == [1, 2, 3]
    assert json.loads(out.read_text())[1] == {"question_id": 2, "error": None}
    assert [r["question_id"] for r in read_journal(journal_path(out))] == [1, 2, 3, 2], "the journal keeps the history"
