"""The methods as plug-ins (live_mind/methods/): the registry, ``--method`` and its alias,
PredGen on the scripted model, a method from outside the package, and the schedule rule
every driver shares (live_mind/schedule.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest

import run_solver
from live_mind.methods import registry
from live_mind.methods.predgen import PENDING_OPTIONS, PredGen
from live_mind.models.base import Capabilities, ChatRequest
from live_mind.models.scripted import ScriptedModel
from live_mind.profiles import CostProfile
from live_mind.schedule import WAIT, next_visible
from live_mind.solver import TimingConfig, solve_question

ROOT = Path(__file__).resolve().parents[1]
SCRIPTED = str(ROOT / "tests" / "fixtures" / "scripted_models.toml")
PROFILE = CostProfile("t", fixed=0.0, uncached=0.001, cached=0.0005, completion=0.1)
ROW = {"question_id": 7, "question": "A cart rolls down a hill. It starts at rest. What is its speed after 3 s?",
       "options": ["1 m/s", "29 m/s", "3 m/s", "9 m/s"], "answer": "B", "answer_index": 1, "category": "physics"}
ANSWER = "Speed is g times t, about 29 m/s. The answer is (B)."


def _run(tmp_path: Path, name: str, *flags: str) -> tuple[bytes, dict]:
    out = tmp_path / name / "all.json"
    code = run_solver.main(["--models", SCRIPTED, "--model", "scripted-fast", "--num_questions", "1",
                            "--timing", "paper-llama-3-70b", "--output_file", str(out), *flags])
    assert code == 0
    config = json.loads(out.with_suffix(".config.json").read_text())
    return out.read_bytes(), {k: v for k, v in config.items() if k not in ("output_file", "started_at")}


@pytest.mark.parametrize(("alias", "method"), [(["--use_lm"], "livemind"), ([], "cot")])
def test_method_flag_gives_the_same_records_and_config_as_the_paper_flag(tmp_path, alias, method):
    records, config = _run(tmp_path, "alias", *alias)
    named, named_config = _run(tmp_path, "named", "--method", method)
    assert named == records and named_config == config
    assert {r["mode"] for r in json.loads(records)} == {method}


def test_other_methods_are_saved_by_name_with_their_own_config_id(tmp_path):
    _, cot = _run(tmp_path, "cot")
    _, predgen = _run(tmp_path, "predgen", "--method", "predgen")
    assert predgen["method"] == "predgen" and predgen["use_lm"] is False and "method" not in cot
    assert predgen["config_id"] != cot["config_id"]


@pytest.mark.parametrize(("flags", "fragment"), [
    (["--method", "nosuch"], "unknown method 'nosuch'"),
    (["--method", "nosuch_module:Thing"], "cannot be loaded"),
    (["--use_lm", "--method", "cot"], "cannot be combined"),
    (["--method", "predgen", "--assist_model", "scripted-slow"], "--assist_model needs --method livemind"),
])
def test_bad_method_is_one_line_before_any_model_loads(tmp_path, flags, fragment):
    marker = tmp_path / "marker"
    env = {**os.environ, "LIVEMIND_TEST_MARKER": str(marker)}
    result = subprocess.run([sys.executable, "run_solver.py", "--models", SCRIPTED, "--model", "scripted-fast",
                             "--output_file", str(tmp_path / "o.json"), *flags], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr
    assert not marker.exists()


def test_a_method_from_outside_the_package_runs_through_run_solver(tmp_path):
    out = tmp_path / "toy.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "fixtures" / "toy_method")}
    result = subprocess.run([sys.executable, "run_solver.py", "--models", SCRIPTED, "--model", "scripted-fast",
                             "--num_questions", "1", "--method", "toy_guess:Guess", "--output_file", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    records = json.loads(out.read_text())
    assert records and all(r["mode"] == "toy-guess" and r["toy"] == "no model call" for r in records)
    assert all(r["steps"][-1]["note"] == "guessed" and r["time_info"]["latency"] == 0.0 for r in records)


def test_describe_lists_every_registered_method():
    text = registry.describe()
    assert all(name in text for name in ("livemind", "cot", "predgen"))


# ------------------------------------------------------------------ PredGen


def _predgen(model, **timing) -> dict:
    return solve_question(PredGen(model), ROW, TimingConfig(profile=PROFILE, **timing))


def _same_answer(request: ChatRequest) -> str:
    return ANSWER  # the completed input does not change the answer


def test_predgen_reuses_a_speculation_the_complete_input_does_not_change():
    record = _predgen(ScriptedModel(responder=_same_answer))
    kinds = [s["kind"] for s in record["steps"]]
    assert kinds[-1] == "final" and "speculation" in kinds
    assert record["predgen"]["outcome"] == "reused" and record["steps"][-1]["note"] == "reused"
    assert record["predgen"]["kept_tokens"] == len(ANSWER.split()) and record["steps"][-1]["completion_tokens"] == 0
    assert record["pred"] == "B" and record["solution"] == ANSWER
    # the answer costs one verification pass (prompt tokens), not its generation
    cot = solve_question(registry.REGISTRY["cot"].build(_ctx(ScriptedModel(responder=_same_answer))), ROW,
                         TimingConfig(profile=PROFILE))
    assert record["time_info"]["latency"] < cot["time_info"]["latency"] / 5


def test_predgen_keeps_the_prefix_a_changed_answer_shares():
    def changed(request: ChatRequest) -> str:
        last = request.messages[-1]["content"]
        return ANSWER if PENDING_OPTIONS in last else "Speed is g times t, about 29 m/s, option B. The answer is (B)."

    record = _predgen(ScriptedModel(responder=changed))
    assert record["predgen"]["outcome"] == "drafted"
    assert record["predgen"]["kept_tokens"] == 7 and record["steps"][-1]["completion_tokens"] == 14 - 7


def test_predgen_answers_afresh_without_a_verifier_or_a_finished_speculation():
    class NoVerify(ScriptedModel):
        capabilities: ClassVar[Capabilities] = replace(ScriptedModel.capabilities, draft_verify=False)

    record = _predgen(NoVerify(responder=_same_answer))
    assert record["predgen"] == {"outcome": "afresh"} and "draft" not in str(record["steps"][-1])
    slow = solve_question(PredGen(ScriptedModel(responder=_same_answer, seconds=1000.0)), ROW, TimingConfig())
    assert slow["predgen"] == {"outcome": "afresh"}
    assert all(s["note"] == "cancelled" and s["cancelled"] for s in slow["steps"][:-1])


def test_predgen_speculations_are_cut_by_the_next_segment_and_see_no_options():
    model = ScriptedModel(responder=_same_answer, seconds=[5.0, 5.0, 5.0, 1.0])
    record = solve_question(PredGen(model), ROW, TimingConfig())
    specs = [s for s in record["steps"] if s["kind"] == "speculation"]
    assert specs and all(s["end"] <= s["arrival"] + 1e-9 or s["end"] > s["start"] for s in specs)
    for step, nxt in zip(specs, specs[1:]):
        assert step["end"] <= nxt["start"] + 1e-9
    assert all("1 m/s" not in m.messages[-1]["content"] for m in model.calls[:-1])
    assert "1 m/s" in model.calls[-1].messages[-1]["content"]


def _ctx(model):
    from live_mind.methods.base import MethodContext
    from live_mind.prompts import PromptSet
    from live_mind.runconfig import RunConfig
    from live_mind.segment import split

    return MethodContext(RunConfig(script="time_info", model="m"), PromptSet(), {"model": model}, split)


# ------------------------------------------------------------------ the schedule rule


@pytest.mark.parametrize(("schedule", "cancel", "consumed", "arrived", "complete", "expected"), [
    ("every", False, 0, 3, False, 1), ("latest", False, 0, 3, False, 3),
    ("every", False, 1, 1, False, WAIT), ("latest", False, 2, 2, False, WAIT),
    ("every", False, 1, 3, True, 2), ("every", False, 3, 3, True, None),
    ("every", True, 1, 3, True, None), ("latest", False, 1, 3, True, None),
])
def test_one_schedule_rule(schedule, cancel, consumed, arrived, complete, expected):
    assert next_visible(schedule, cancel, consumed, arrived, complete) == expected


# ------------------------------------------------------------------ continuous


def test_continuous_extends_one_conversation_segment_by_segment():
    from live_mind.methods.continuous import Continuous

    model = ScriptedModel(responder=lambda r: "Noting: speed from rest." if len(r.messages) < 8 else ANSWER, seconds=1.0)
    record = solve_question(Continuous(model), ROW, TimingConfig())
    calls = model.calls
    assert len(calls) >= 3 and [s["kind"] for s in record["steps"]] == ["think"] * (len(calls) - 1) + ["final"]
    for earlier, later in zip(calls, calls[1:]):
        n = len(earlier.messages)
        assert later.messages[:n] == earlier.messages  # the same context, extended in place
        assert later.messages[n] == {"role": "assistant", "content": "Noting: speed from rest."}
        assert later.messages[n + 1]["role"] == "user" and len(later.messages) == n + 2
    assert "1 m/s" in calls[-1].messages[-1]["content"] and all("1 m/s" not in str(c.messages) for c in calls[:-1])
    assert record["pred"] == "B" and record["mode"] == "continuous"


def test_continuous_thinks_only_as_long_as_the_next_segment_leaves_time():
    from live_mind.methods.continuous import Continuous
    from live_mind.timeline import QuestionInput

    model, timing = ScriptedModel(default="Noting."), TimingConfig(profile=PROFILE)
    method = Continuous(model, think_tokens=10_000)
    record = solve_question(method, ROW, timing)
    q = QuestionInput.typed_by(ROW, method.segmenter(ROW["question"]), timing)
    thinks = [s for s in record["steps"] if s["kind"] == "think"]
    assert len(thinks) == len(q.segments)
    for step, request in zip(thinks, model.calls):
        until = q.arrivals[step["segments"]] if step["segments"] < len(q.arrivals) else q.complete_at
        assert request.max_new_tokens == int((until - step["start"]) / PROFILE.completion) < 10_000


def test_continuous_is_refused_on_a_backend_that_cannot_extend_a_context(tmp_path):
    marker = tmp_path / "marker"
    toy = ROOT / "tests" / "fixtures" / "toy_backend"
    env = {**os.environ, "PYTHONPATH": str(toy), "LIVEMIND_TEST_MARKER": str(marker)}
    result = subprocess.run([sys.executable, "run_solver.py", "--models", str(toy / "models.toml"), "--model", "toy-echo",
                             "--method", "continuous", "--output_file", str(tmp_path / "o.json")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "--method continuous needs a backend with extends_context" in result.stderr


# ------------------------------------------------------------------ the comparison


def test_the_benchmark_gives_one_row_per_method_on_the_same_questions(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import methods as bench
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    out = tmp_path / "methods.json"
    code = bench.main(["--methods", "livemind,cot,predgen,continuous", "--json", str(out), "--out_dir", str(tmp_path / "runs"),
                       "--models", SCRIPTED, "--model", "scripted-fast", "--task", str(ROOT / "tests/fixtures/quiz_task.toml"),
                       "--data_path", str(ROOT / "tests/fixtures/quiz.jsonl"), "--timing", "paper-llama-3-8b"])
    assert code == 0
    table = json.loads(out.read_text())
    assert [row[0] for row in table["rows"]] == ["livemind", "cot", "predgen", "continuous"]
    header = table["header"]
    for row in table["rows"]:
        cells = dict(zip(header, row))
        assert cells["questions"] == 5 and cells["95% CI low"] <= cells["accuracy %"] <= cells["95% CI high"]
        assert cells["p50 s"] <= cells["p95 s"] and cells["generated tok/q"] >= cells["final tok/q"] >= 0 < cells["generated tok/q"]
    calls = {row[0]: dict(zip(header, row))["calls/q"] for row in table["rows"]}
    assert calls["cot"] == 1 and calls["livemind"] > 1 and calls["predgen"] > 1 and calls["continuous"] > 1
    assert out.with_suffix(".png").stat().st_size > 1000


def test_the_benchmark_checks_every_method_before_any_model_loads(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import methods as bench
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    code = bench.main(["--methods", "cot,nosuch", "--out_dir", str(tmp_path), "--models", SCRIPTED, "--model", "scripted-fast"])
    assert code == 2 and "unknown method 'nosuch'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_method_rows_refuse_runs_on_different_questions():
    from live_mind.analysis.methods import methods_table

    record = {"question_id": 1, "correct": True, "time_info": {"latency": 1.0}, "usage": {"completion_tokens": [3]},
              "steps": [{}], "error": None}
    with pytest.raises(ValueError, match="same questions"):
        methods_table([("a", [record]), ("b", [{**record, "question_id": 2}])])


def test_predgen_generates_a_speculation_only_as_far_as_the_next_segment_allows():
    class Truncating(ScriptedModel):  # honours max_new_tokens as an engine does
        def complete(self, requests):
            out = super().complete(requests)
            for request, completion in zip(requests, out):
                words = completion.text.split()
                if len(words) > request.max_new_tokens:
                    completion.text = " ".join(words[:request.max_new_tokens])
                    completion.completion_tokens, completion.finish_reason = request.max_new_tokens, "length"
            return out

    long_answer = " ".join(["step"] * 400) + " The answer is (B)."
    model = Truncating(responder=lambda r: long_answer)
    record = solve_question(PredGen(model), ROW, TimingConfig(profile=PROFILE))
    specs = [s for s in record["steps"] if s["kind"] == "speculation"]
    assert specs and all(s["note"] == "cancelled" for s in specs)  # none could finish before the next segment
    for step, request in zip(specs, model.calls):
        assert request.max_new_tokens < 400 and step["end"] <= step["start"] + request.max_new_tokens * PROFILE.completion + 1
    assert record["predgen"] == {"outcome": "afresh"}


def test_the_re_modeller_recharges_another_methods_answer_and_says_it_is_approximate():
    from live_mind.analysis.remodel import replay

    record = _predgen(ScriptedModel(responder=lambda r: ANSWER if "1 m/s" in str(r.messages) else "Thinking."))
    doubled = CostProfile("x2", fixed=0.0, uncached=0.002, cached=0.001, completion=0.2)
    result = replay(record, doubled)
    final = record["steps"][-1]
    expected = doubled.seconds(final["prompt_tokens"], final["cached_tokens"], final["completion_tokens"])
    assert not result.exact and "predgen run" in result.reason
    assert result.latency == pytest.approx(record["time_info"]["overhead_time"] + expected)
    assert replay(record, PROFILE).latency == pytest.approx(record["time_info"]["latency"])
