"""UA-SPI + prefix KV reuse through the real-time solver, and the
latency benchmark's summary arithmetic."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from live_mind.data import format_options, load_sample_questions
from live_mind.formats import make_format
from live_mind.methods.livemind import LiveMindController
from live_mind.models.scripted import ScriptedModel
from live_mind.prompts import PromptSet
from live_mind.solver import TimingConfig, solve_question

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("latency_benchmark", ROOT / "benchmarks" / "latency.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def record(latency: float, prompt: list[int], cached: list[int], correct: bool, rules: list[str]) -> dict:
    steps = [{"kind": "inference", "parse_rule": r} for r in rules] + [{"kind": "final", "parse_rule": None}]
    return {"time_info": {"latency": latency, "total_gen_time": latency + 1.0}, "correct": correct, "error": None,
            "usage": {"prompt_tokens": prompt, "completion_tokens": [1] * len(prompt), "cached_tokens": cached},
            "steps": steps}


def test_benchmark_summary_arithmetic():
    bench = load_benchmark()
    assert bench.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == pytest.approx(9.1)
    assert math.isnan(bench.percentile([], 50))
    recs = [record(2.0, [10, 100], [0, 90], True, ["strict", "unparsed"]),
            record(4.0, [10, 300], [0, 270], False, ["lenient", "cancelled"]),
            {"error": "ModelError: x", "correct": False}]
    row = bench.summarize("v2", recs, baseline_mean=6.0)
    assert (row.latency_mean, row.latency_median, row.ratio_to_baseline) == (3.0, 3.0, 0.5)
    assert row.final_prompt_tokens == 200 and row.final_cached_share == pytest.approx(0.9)
    assert (row.prompt_tokens_total, row.completion_tokens_total, row.gen_time_total) == (420, 4, 8.0)
    assert row.accuracy == pytest.approx(1 / 3) and row.unparsed_rate == pytest.approx(1 / 3) and row.failed == 1
    assert "(c) UA-SPI+reuse+cancel" in bench.table([row])


def test_benchmark_rejects_bad_flags(capsys):
    bench = load_benchmark()
    assert bench.main(["--configs", "v1,zz"]) == 2
    assert "unknown zz" in capsys.readouterr().err
    assert bench.main(["--num_questions", "0"]) == 2


def test_ua_spi_with_the_scripted_model_through_the_solver():
    row = next(r for r in load_sample_questions() if r["question"].count(". ") >= 2)
    model = ScriptedModel(responder=lambda r: "The answer is (A)." if "Options are" in r.messages[-1]["content"] else "action wait.")
    ctrl = LiveMindController(model, prompt_format=make_format("UA-SPI"))
    rec = solve_question(ctrl, row, TimingConfig(schedule="latest", cancel_on_complete=True))
    calls = model.calls
    assert all(calls[k + 1].messages[: len(calls[k].messages)] == calls[k].messages for k in range(len(calls) - 1))
    assert rec["pred"] == "A" and rec["steps"][-1]["kind"] == "final"


@pytest.mark.model
def test_ua_spi_reuses_the_previous_call_on_the_embedded_model(embedded_model):
    """Every call after the first is served from the cache for at least the previous call's
    prompt; the final call re-reads only the options and the cue."""
    row = next(r for r in load_sample_questions() if r["question"].count(". ") >= 2)
    ctrl = LiveMindController(embedded_model, prompt_format=make_format("UA-SPI"), prime_actions=True,
                              max_new_tokens=8, final_max_new_tokens=8)
    rec = solve_question(ctrl, row, TimingConfig(typing_speed=5.0))
    prompt, cached = rec["usage"]["prompt_tokens"], rec["usage"]["cached_tokens"]
    assert len(prompt) >= 3 and cached[0] == 0
    for k in range(1, len(prompt)):
        assert cached[k] >= prompt[k - 1], (k, prompt, cached)
    tail = format_options(row["options"]) + "\n\n" + PromptSet().v2_final
    tail_tokens = len(embedded_model.tokenizer(tail, add_special_tokens=False)["input_ids"])
    assert prompt[-1] - cached[-1] <= tail_tokens + 12  # + the turn delimiters around it
