"""Tests of the analysis suite: every CSV cell of each script on small
synthetic files, bad input, several files, and the reproduction of the authors'
published CSVs (skipped when the shared data is absent)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from conftest import missing

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import analyze_actions  # noqa: E402
import analyze_batched  # noqa: E402
import analyze_time_info  # noqa: E402
import compare_runs  # noqa: E402
from live_mind.analysis import tables as analysis  # noqa: E402
from live_mind.analysis.actions import record_actions  # noqa: E402
from live_mind.analysis.tables import AnalysisError, load_run  # noqa: E402
from live_mind.segment import count_sentences  # noqa: E402

PUBLISHED = ROOT.parent / "shared" / "data" / "livemind-v1" / "llama_3_70b_lm"

ONE = "What is two plus two?"                      # 1 sentence -> length 2
TWO = "A ball is dropped. How fast is it after 2 s?"  # 2 sentences -> length 3
RIGHT, WRONG, NONE = "So the answer is (A).", "The answer is (B).", "I am not sure."


def test_question_lengths_used_below() -> None:
    assert (count_sentences(ONE), count_sentences(TWO)) == (1, 2)


def record(qid: int, category: str, question: str, solution: str | None, *, latency: float | None = None,
           gen: float | None = None, tokens: list[int] | None = None, **extra) -> dict:
    rec = {"question_id": qid, "question": question, "options": ["x", "y"], "answer": "A", "answer_index": 0,
           "cot_content": "", "category": category, "src": "test", "solution": solution,
           "usage": {"completion_tokens": tokens or [], "prompt_tokens": [1] * len(tokens or []),
                     "total_tokens": [1] * len(tokens or [])}}
    if latency is not None:
        rec["time_info"] = {"current_time": 0.0, "latency": latency, "total_gen_time": gen, "overhead_time": 0}
    rec.update(extra)
    return rec


def write(path: Path, records: object) -> str:
    path.write_text(json.dumps(records))
    return str(path)


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def cells(*values: object) -> list[str]:
    """A CSV row as the csv module writes it: repr floats, str ints, '' for None."""
    return ["" if v is None else str(v) for v in values]


def timed_run() -> list[dict]:
    return [
        record(1, "math", ONE, RIGHT, latency=1.0, gen=2.0, tokens=[5, 10]),
        record(2, "law", TWO, WRONG, latency=3.0, gen=4.0, tokens=[3, 4, 30]),
        record(3, "math", TWO, RIGHT, error="ModelError: boom"),  # failed: wrong, no time_info
        record(4, "law", ONE, NONE, latency=2.0, gen=6.0, tokens=[7, 40]),
    ]


# --- analyze_time_info.py -------------------------------------------------------------

def test_time_info_single_file_cells(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path / "all.json", timed_run())
    assert analyze_time_info.main([path, "--no_figures"]) == 0
    assert "4 records, 1 failed (counted as wrong)" in capsys.readouterr().out
    assert rows(tmp_path / "timeinfo_by_category.csv") == [
        ["Category", "Total", "File 1 Accuracy", "File 1 Latency", "File 1 Gen Time"],
        cells("All", 4, 100 * 1 / 4, (1.0 + 3.0 + 2.0) / 3, (2.0 + 4.0 + 6.0) / 3),
        cells("math", 2, 100 * 1 / 2, 1.0, 2.0),
        cells("law", 2, 0.0, 2.5, 5.0),
    ]
    assert rows(tmp_path / "timeinfo_by_len.csv") == [
        ["Length", "Total", "File 1 Accuracy", "File 1 Latency", "File 1 Gen Time"],
        cells("All", 4, 25.0, 2.0, 4.0),
        cells(2, 2, 50.0, 1.5, 4.0),
        cells(3, 2, 0.0, 3.0, 4.0),
    ]
    raw = (tmp_path / "timeinfo_by_len.csv").read_bytes()
    assert raw.startswith(b"Length,Total,File 1 Accuracy") and raw.endswith(b"\r\n") and raw.count(b"\r\n") == 4


def test_time_info_several_files_go_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write(tmp_path / "a.json", timed_run())
    other = timed_run()
    other[1]["solution"], other[1]["time_info"]["latency"] = RIGHT, 5.0
    second = write(tmp_path / "b.json", other)
    out = tmp_path / "cwd"
    out.mkdir()
    monkeypatch.chdir(out)
    assert analyze_time_info.main([first, second, "--no_figures"]) == 0
    table = rows(out / "timeinfo_by_category.csv")
    # metric-major, as the v1 scripts order several files
    assert table[0] == ["Category", "Total", "File 1 Accuracy", "File 2 Accuracy", "File 1 Latency",
                        "File 2 Latency", "File 1 Gen Time", "File 2 Gen Time"]
    assert table[1] == cells("All", 4, 25.0, 50.0, 2.0, (1.0 + 5.0 + 2.0) / 3, 4.0, 4.0)
    assert table[3] == cells("law", 2, 0.0, 50.0, 2.5, 3.5, 5.0, 5.0)
    assert rows(out / "timeinfo_by_len.csv")[3] == cells(3, 2, 0.0, 50.0, 3.0, 5.0, 4.0, 4.0)


def test_files_that_disagree_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    first = write(tmp_path / "a.json", timed_run())
    second = write(tmp_path / "b.json", timed_run()[:3])
    assert analyze_time_info.main([first, second, "--no_figures"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "disagree" in err and "law" in err
    moved = timed_run()
    moved[3]["question"] = TWO  # same categories, different lengths
    third = write(tmp_path / "c.json", moved)
    assert analyze_time_info.main([first, third, "--no_figures"]) == 2
    assert "length" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("{not json", "not valid JSON"),
    ('{"a": 1}', "JSON list"),
    ("[]", "JSON list"),
    ("[1]", "not a JSON object"),
    ('[{"question": "Q?", "answer": "A"}]', "'category'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture,
                                          content: str | None, message: str) -> None:
    path = tmp_path / "all.json"
    if content is not None:
        path.write_text(content)
    for script in (analyze_time_info, analyze_batched, analyze_actions):
        assert script.main([str(path), "--no_figures"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
    assert compare_runs.main([str(path), str(path), "--no_figures"]) == 2
    assert message in capsys.readouterr().err


def test_read_only_folder_is_not_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "published"
    folder.mkdir()
    path = write(folder / "all.json", timed_run())
    folder.chmod(0o555)  # like the shared data; root could write anyway, the scripts must not
    try:
        assert analyze_time_info.main([path, "--no_figures"]) == 2
        assert "read-only" in capsys.readouterr().err
        assert sorted(p.name for p in folder.iterdir()) == ["all.json"]
        assert analyze_time_info.main([path, "--no_figures", "--out_dir", str(tmp_path / "out")]) == 0
    finally:
        folder.chmod(0o755)


def test_time_info_needs_time_info(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path / "all.json", [record(1, "math", ONE, RIGHT, tokens=[1, 2])])
    assert analyze_time_info.main([path, "--no_figures"]) == 2
    assert "analyze_batched.py" in capsys.readouterr().err


# --- analyze_batched.py ---------------------------------------------------------------

def test_batched_cells(tmp_path: Path) -> None:
    path = write(tmp_path / "all.json", timed_run())
    assert analyze_batched.main([path, "--no_figures"]) == 0
    assert rows(tmp_path / "timeinfo_by_category.csv") == [
        ["Category", "Total", "File 1 Accuracy", "File 1 Tokens"],
        cells("All", 4, 25.0, (10 + 30 + 40) / 3),
        cells("math", 2, 50.0, 10.0),
        cells("law", 2, 0.0, 35.0),
    ]
    assert rows(tmp_path / "timeinfo_by_len.csv") == [
        ["Length", "Total", "File 1 Accuracy", "File 1 Tokens"],
        cells("All", 4, 25.0, (10 + 30 + 40) / 3),
        cells(2, 2, 50.0, 25.0),
        cells(3, 2, 0.0, 30.0),
    ]


# --- analyze_actions.py ---------------------------------------------------------------

def steps(*actions: str) -> list[dict]:
    calls = [{"kind": "inference", "action": a, "response": f"action {a}."} for a in actions]
    return calls + [{"kind": "final", "action": None, "response": RIGHT}]


def action_run() -> list[dict]:
    return [
        record(1, "math", ONE, RIGHT, tokens=[4, 9], steps=steps("background")),
        record(2, "math", TWO, RIGHT, tokens=[3, 4, 2, 9], steps=steps("wait", "inference", "cancelled")),
        record(3, "law", TWO, WRONG, tokens=[3, 4, 9], steps=steps("hypothesize", "unparsed")),
        # original v1 batched layout: kept actions only; 2 inference calls -> 1 wait
        record(4, "law", TWO, RIGHT, tokens=[3, 20, 9], action=["action inference. The speed is g t."]),
        record(5, "law", ONE, NONE, tokens=[9]),  # no action information
    ]


ACTION_HEADER = ["File 1 Calls", "File 1 Background", "File 1 Inference", "File 1 Hypothesize", "File 1 Wait",
                 "File 1 Unparsed"]


def test_actions_cells(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path / "all.json", action_run())
    assert analyze_actions.main([path, "--no_figures"]) == 0
    out = capsys.readouterr().out
    assert "1 with kept actions only" in out and "1 without action information" in out
    assert "1 cancelled inference calls, left out" in out
    assert rows(tmp_path / "actions_per_step.csv") == [
        ["Step", *ACTION_HEADER],
        cells("All", 5, 20.0, 20.0, 20.0, 20.0, 20.0),
        cells(1, 3, 100 * 1 / 3, 0.0, 100 * 1 / 3, 100 * 1 / 3, 0.0),
        cells(2, 2, 0.0, 50.0, 0.0, 0.0, 50.0),
    ]
    assert rows(tmp_path / "actions_per_len.csv") == [
        ["Length", "Total", *ACTION_HEADER],
        cells("All", 5, 7, 100 * 1 / 7, 100 * 2 / 7, 100 * 1 / 7, 100 * 2 / 7, 100 * 1 / 7),
        cells(2, 2, 1, 100.0, 0.0, 0.0, 0.0, 0.0),
        cells(3, 3, 6, 0.0, 100 * 2 / 6, 100 * 1 / 6, 100 * 2 / 6, 100 * 1 / 6),
    ]


def test_actions_assume_kept_last(tmp_path: Path) -> None:
    path = write(tmp_path / "all.json", action_run())
    assert analyze_actions.main([path, "--no_figures", "--assume_kept_last"]) == 0
    assert rows(tmp_path / "actions_per_step.csv")[1:] == [
        cells("All", 7, 100 * 1 / 7, 100 * 2 / 7, 100 * 1 / 7, 100 * 2 / 7, 100 * 1 / 7),
        cells(1, 4, 25.0, 0.0, 25.0, 50.0, 0.0),
        cells(2, 3, 0.0, 100 * 2 / 3, 0.0, 0.0, 100 * 1 / 3),
    ]


def test_actions_two_files_and_missing_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write(tmp_path / "a.json", action_run())
    other = action_run()
    other[0]["steps"] = steps("wait")
    second = write(tmp_path / "b.json", other)
    monkeypatch.chdir(tmp_path)
    assert analyze_actions.main([first, second, "--no_figures"]) == 0
    table = rows(tmp_path / "actions_per_step.csv")
    assert table[0] == ["Step", *(h for pair in zip(ACTION_HEADER, (h.replace("File 1", "File 2") for h in ACTION_HEADER))
                                  for h in pair)]  # metric-major
    first_cells = [3, 100 * 1 / 3, 0.0, 100 * 1 / 3, 100 * 1 / 3, 0.0]
    second_cells = [3, 0.0, 0.0, 100 * 1 / 3, 100 * 2 / 3, 0.0]
    assert table[2] == cells(1, *(c for pair in zip(first_cells, second_cells) for c in pair))


def test_actions_need_action_information(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write(tmp_path / "all.json", timed_run())
    assert analyze_actions.main([path, "--no_figures"]) == 2
    assert "no action information" in capsys.readouterr().err


def test_kept_actions_cannot_outnumber_calls(tmp_path: Path) -> None:
    rec = record(1, "math", ONE, RIGHT, tokens=[3, 9], action=["action background. a", "action inference. b"])
    with pytest.raises(AnalysisError, match="2 kept actions"):
        record_actions(rec)
    rec["action"] = ["no action format"]
    assert record_actions(rec).types == ("unparsed",)


def test_out_of_set_names_kept_by_the_v1_rule_count_as_unparsed() -> None:
    rec = record(1, "math", ONE, RIGHT, tokens=[3, 4, 9], steps=steps("inference", "wait"))
    rec["steps"][1].update(action="wai", parse_rule="strict")
    assert record_actions(rec).types == ("inference", "unparsed")
    rec["steps"][1]["parse_rule"] = None
    with pytest.raises(AnalysisError, match="unknown action 'wai'"):
        record_actions(rec)


def test_v1_wait_rule_positions_kept_actions(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    kept = ["action background. a", "action inference. b"]
    rec = record(1, "math", ONE, RIGHT, tokens=[4, 30, 4, 12, 9], action=kept)
    sequence = record_actions(rec)
    assert (sequence.types, sequence.positioned, sequence.wait_rule) == (
        ("wait", "background", "wait", "inference"), True, True)
    assert record_actions(rec, wait_tokens=None).positioned is False  # rule off
    mismatch = record(2, "math", ONE, RIGHT, tokens=[4, 30, 5, 12, 9], action=kept)  # 3 non-4 calls, 2 kept
    assert (record_actions(mismatch).positioned, record_actions(mismatch).wait_rule) == (False, False)
    path = write(tmp_path / "all.json", [rec, mismatch])
    assert analyze_actions.main([path, "--no_figures"]) == 0
    out = capsys.readouterr().out
    assert "v1 wait rule applied to 1 with kept actions only" in out and "1 with kept actions only, left out" in out
    assert rows(tmp_path / "actions_per_step.csv")[1] == cells("All", 4, 25.0, 25.0, 0.0, 50.0, 0.0)
    assert analyze_actions.main([path, "--no_figures", "--wait_tokens", "0"]) == 0
    assert "wait rule applied" not in capsys.readouterr().out


# --- compare_runs.py and --compare ------------------------------------------------------

def test_compare_runs_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = [record(i, r["category"], r["question"], WRONG, tokens=[t])
            for (i, r), t in zip(enumerate(timed_run(), 1), [100, 200, 300, 400])]
    live = timed_run()
    for r in live:
        r.pop("time_info", None)
    paths = [write(tmp_path / "base.json", base), write(tmp_path / "lm.json", live)]
    monkeypatch.chdir(tmp_path)
    assert compare_runs.main([*paths, "--no_figures"]) == 0
    table = rows(tmp_path / "comparison.csv")
    assert table[0] == ["Group", "Key", "Total", "Base Accuracy", "LiveMind Accuracy", "Accuracy Diff",
                        "Base Tokens", "LiveMind Tokens", "Tokens Reduction"]
    base_all, live_all = (100 + 200 + 300 + 400) / 4, (10 + 30 + 40) / 3
    assert table[1] == cells("all", "All", 4, 0.0, 25.0, 25.0, base_all, live_all,
                             100 * (base_all - live_all) / base_all)
    assert table[2] == cells("category", "math", 2, 0.0, 50.0, 50.0, 200.0, 10.0, 95.0)
    assert [r[1] for r in table[1:]] == ["All", "math", "law", "2", "3"]


def test_compare_flag_latency(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base = timed_run()
    for r in base:
        if "time_info" in r:
            r["time_info"]["latency"] *= 4
    paths = [write(tmp_path / "base.json", base), write(tmp_path / "lm.json", timed_run())]
    assert analyze_time_info.main([*paths, "--compare", "--no_figures", "--out_dir", str(tmp_path)]) == 0
    assert "Latency Reduction" in capsys.readouterr().out
    assert rows(tmp_path / "comparison.csv")[1] == cells("all", "All", 4, 25.0, 25.0, 0.0, 8.0, 2.0, 75.0)
    assert analyze_time_info.main([paths[0], "--compare", "--no_figures"]) == 2
    assert compare_runs.main([*paths, "--metric", "latency", "--no_figures", "--out_dir", str(tmp_path)]) == 0


def test_compare_latency_needs_time_info(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    paths = [write(tmp_path / "a.json", [record(1, "m", ONE, RIGHT, tokens=[2])]),
             write(tmp_path / "b.json", [record(1, "m", ONE, RIGHT, tokens=[1, 2])])]
    assert compare_runs.main([*paths, "--metric", "latency", "--no_figures"]) == 2
    assert "time_info" in capsys.readouterr().err


# --- figures ----------------------------------------------------------------------------

def test_figures_are_written_and_copied_to_res(tmp_path: Path) -> None:
    (tmp_path / "run1").mkdir()
    path = write(tmp_path / "run1" / "all.json", action_run())
    res = tmp_path / "res"
    assert analyze_actions.main([path, "--res", str(res)]) == 0
    assert analyze_batched.main([path, "--res", str(res)]) == 0
    timed = write(tmp_path / "run1" / "timed.json", timed_run())
    assert analyze_time_info.main([timed, "--res", str(res)]) == 0
    assert compare_runs.main([timed, timed, "--out_dir", str(tmp_path), "--res", str(res)]) == 0
    for png in (tmp_path / "run1" / "actions_per_step.png", res / "run1_actions_per_step.png",
                tmp_path / "run1" / "tokens_by_len.png", res / "run1_tokens_by_len.png",
                tmp_path / "run1" / "latency_by_len.png", res / "timed_latency_by_len.png",
                tmp_path / "comparison_by_len.png", res / "timed_vs_timed_comparison_by_len.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parallel_counting_gives_the_same_lengths(monkeypatch: pytest.MonkeyPatch) -> None:
    questions = [ONE, TWO, "Dr. Smith has 3.5 kg of salt. He adds 1 kg. How much now?"] * 3
    monkeypatch.setattr(analysis, "_LENGTHS", {})
    monkeypatch.setattr(analysis, "PARALLEL_MIN", 1)
    assert analysis.question_lengths(questions) == [2, 3, 4] * 3


def test_records_of_our_real_time_solver(tmp_path: Path) -> None:
    """End to end on records built by ``solve_question`` (guards against schema drift)."""
    from live_mind.methods.cot import CoTController
    from live_mind.methods.livemind import LiveMindController
    from live_mind.models.scripted import ScriptedModel
    from live_mind.solver import TimingConfig, solve_question

    replies = ["action background. Known facts", "action wait.", "action hypothesize. maybe (A)"]

    def respond(request) -> str:
        if request.messages[0]["content"].startswith("You are reading"):
            return replies[len(model.calls) % 3]
        return RIGHT

    model = ScriptedModel(responder=respond, seconds=0.5)
    rows_in = [{"question_id": i, "question": q, "options": ["x", "y"], "answer": "A", "answer_index": 0,
                "cot_content": "", "category": c, "src": "t"}
               for i, (q, c) in enumerate([(ONE, "math"), (TWO, "law"), (TWO, "math")])]
    live = [solve_question(LiveMindController(model), r, TimingConfig(cancel_on_complete=True)) for r in rows_in]
    base = [solve_question(CoTController(ScriptedModel(default=WRONG, seconds=4.0)), r, TimingConfig())
            for r in rows_in]
    paths = [write(tmp_path / "cot.json", base), write(tmp_path / "lm.json", live)]
    out = str(tmp_path / "out")
    assert analyze_time_info.main([*paths, "--no_figures", "--out_dir", out, "--compare"]) == 0
    assert rows(tmp_path / "out" / "timeinfo_by_category.csv")[1][:3] == cells("All", 3, 0.0)
    assert analyze_batched.main([paths[1], "--no_figures", "--out_dir", out]) == 0
    assert analyze_actions.main([paths[1], "--no_figures", "--out_dir", out]) == 0
    per_step = rows(tmp_path / "out" / "actions_per_step.csv")
    assert per_step[1][0] == "All" and int(per_step[1][1]) >= 3
    assert compare_runs.main([*paths, "--no_figures", "--out_dir", out]) == 0
    assert rows(tmp_path / "out" / "comparison.csv")[1][:6] == cells("all", "All", 3, 0.0, 100.0, 100.0)


# --- the authors' published run -----------------------------------------------------------

def test_reproduces_published_csvs(tmp_path: Path) -> None:
    if not (PUBLISHED / "all.json").exists():
        missing(f"shared data not found at {PUBLISHED} (published LiveMind v1 run)")
    assert analyze_time_info.main([str(PUBLISHED / "all.json"), "--no_figures", "--out_dir", str(tmp_path)]) == 0
    assert len(load_run(PUBLISHED / "all.json").records) == 1400
    for name in ("timeinfo_by_category.csv", "timeinfo_by_len.csv"):
        ours, theirs = rows(tmp_path / name), rows(PUBLISHED / name)
        assert len(ours) == len(theirs)
        for i, (mine, published) in enumerate(zip(ours, theirs)):
            assert mine == published, f"{name} row {i}"
        assert (tmp_path / name).read_bytes() == (PUBLISHED / name).read_bytes()


def test_the_dashed_spellings_of_the_analysis_flags_still_work(tmp_path: Path) -> None:
    """The flags are snake_case like the solvers'; the earlier dashed spellings are aliases."""
    path = write(tmp_path / "all.json", action_run())
    out = tmp_path / "dashed"
    assert analyze_actions.main([path, "--no-figures", "--assume-kept-last", "--wait-tokens", "0", "--out-dir", str(out)]) == 0
    assert (out / "actions_per_step.csv").is_file() and not list(out.glob("*.png"))
    assert compare_runs.main([path, path, "--metric", "tokens", "--no-figures", "--out-dir", str(out)]) == 0
    assert (out / "comparison.csv").is_file()
