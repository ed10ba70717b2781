"""Several questions in flight (``live_mind/concurrency.py``) and the modelled per-question
cache (``live_mind/cachemodel.py``): a question's record must not depend on its neighbours.

Profile: 0.5 s per call, 0.01 s per uncached prompt token, 0.001 s per cached prompt
token, 0.1 s per completion token.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

import pytest

from live_mind.cachemodel import QuestionCache, modelled_cached
from live_mind.cli import construction_options
from live_mind.concurrency import solve_concurrently
from live_mind.formats import make_format
from live_mind.methods.livemind import LiveMindController
from live_mind.models.aio import serializer
from live_mind.models.base import Capabilities, ChatRequest, Completion
from live_mind.models.scripted import ScriptedModel
from live_mind.profiles import CostProfile
from live_mind.solver import TimingConfig, solve_question

PROFILE = CostProfile("test", fixed=0.5, uncached=0.01, cached=0.001, completion=0.1)
ROW = {"question_id": 11, "question": "The sky is blue. Why is it blue?", "options": ["red", "blue"], "answer": "B",
       "answer_index": 1, "cot_content": "", "category": "physics", "src": "test"}
ROWS = [dict(ROW, question_id=i, question=f"Question {i} is long. " * (1 + i % 3) + "Which one?") for i in range(20)]
RULES = [("problem so far|so far", "action inference. the sky scatters blue light")]
DEFAULT = "Blue light scatters more. The answer is (B)."


def _scripted(seed: int, **kwargs) -> ScriptedModel:
    """Greedy stand-in: same replies every run, but a different (random) wall time per call."""
    rng = random.Random(seed)
    return ScriptedModel(rules=RULES, default=DEFAULT, seconds=[rng.uniform(0.1, 20.0) for _ in range(50)], **kwargs)


@dataclass
class BatchCounting(ScriptedModel):
    """A scripted model that reports a neighbour-dependent cache, as real engines do:
    whatever the previous request of the previous batch shared with this one."""

    batches: list[int] = field(default_factory=list)
    last: list[int] = field(default_factory=list)

    def complete(self, requests):
        self.batches.append(len(requests))
        out = super().complete(requests)
        for request, completion in zip(requests, out):
            ids = self.prompt_ids(request)
            completion.cached_tokens = sum(1 for a, b in zip(self.last, ids) if a == b)
            self.last = ids
        return out


def _strip(record):
    """A record without what may differ between runs: wall seconds and the engine's cache."""
    steps = [{k: v for k, v in s.items() if k not in ("seconds", "engine_cached_tokens")} for s in record["steps"]]
    usage = {k: v for k, v in record["usage"].items() if k != "engine_cached_tokens"}
    return {**record, "steps": steps, "usage": usage}


def _ua_spi(model):
    return lambda: LiveMindController(model, prompt_format=make_format("UA-SPI"), prime_actions=True)


# --------------------------------------------------------------------------- the cache rule


def test_modelled_cache_rule():
    assert modelled_cached([], [1, 2, 3]) == 0
    assert modelled_cached([[1, 2, 9], [1, 2, 3, 4, 5]], [1, 2, 3, 4, 7, 8]) == 4
    assert modelled_cached([[1, 2, 3]], [1, 2, 3]) == 2  # the last prompt token is always computed
    assert modelled_cached([list(range(70))], list(range(100)), block=32) == 64
    assert modelled_cached([list(range(20))], list(range(100)), block=32) == 0


def test_question_cache_per_model_and_only_when_the_model_reuses_prefixes():
    reusing, plain = ScriptedModel(reuses_prefixes=True), ScriptedModel()
    first = ChatRequest([{"role": "user", "content": "a b c d"}])
    second = ChatRequest([{"role": "user", "content": "a b c d e f"}])
    engine = Completion("x", 8, 1, 1.0, cached_tokens=3)
    cache = QuestionCache()
    assert cache.charge(reusing, first, engine).cached_tokens == 0
    charged = cache.charge(reusing, second, engine)
    assert charged.cached_tokens == 5 and charged.extra["engine_cached_tokens"] == 3  # <user> a b c d
    assert cache.charge(plain, second, engine).cached_tokens == 0  # another model, and no reuse
    assert QuestionCache().charge(object(), first, engine).cached_tokens == 3  # no prompt ids: the engine's count


def test_no_reuse_gives_zero_cache_as_in_the_published_runs():
    record = solve_question(LiveMindController(_scripted(1)), ROW, TimingConfig(profile=PROFILE))
    assert record["usage"]["cached_tokens"] == [0] * len(record["steps"])


# --------------------------------------------------------------------------- concurrency


def test_ua_spi_at_1_and_14_gives_identical_records_and_modelled_cache():
    """Sequential and 14 in flight (batched, with an engine cache that depends on the
    neighbours) give the same time_info, usage and modelled cached tokens everywhere."""
    timing = TimingConfig(profile=PROFILE)
    one = BatchCounting(rules=RULES, default=DEFAULT, reuses_prefixes=True)
    sequential = solve_concurrently(_ua_spi(one), ROWS, timing, 1)
    many = BatchCounting(rules=RULES, default=DEFAULT, reuses_prefixes=True, seconds=[3.0, 9.0])
    serializer(many, max_batch=14)
    got = {r["question_id"]: r for r in solve_concurrently(_ua_spi(many), ROWS, timing, 14)}
    assert max(many.batches) > 1 and len(got) == len(ROWS)
    assert [_strip(got[r["question_id"]]) for r in sequential] == [_strip(r) for r in sequential]
    assert all(r["usage"]["cached_tokens"][-1] > 0 for r in sequential)  # the final call reuses the question's prompts
    engine = [got[r["question_id"]]["usage"]["engine_cached_tokens"] for r in sequential]
    assert engine != [r["usage"]["engine_cached_tokens"] for r in sequential]  # the engine's count did change
    plain = [solve_question(_ua_spi(_scripted(3, reuses_prefixes=True))(), r, timing) for r in ROWS]
    assert [_strip(r) for r in plain] == [_strip(r) for r in sequential]


def test_calls_for_two_models_run_at_the_same_time():
    """Inference and assist model each keep their own queue: neither waits for a round."""
    inference, assist = _scripted(0), _scripted(1)
    make = lambda: LiveMindController(inference, output_model=assist)  # noqa: E731
    got = solve_concurrently(make, ROWS[:8], TimingConfig(profile=PROFILE), 8)
    assert len(got) == 8 and all(r["error"] is None for r in got)
    assert len(inference.calls) > 8 and len(assist.calls) == 8


def test_concurrency_failed_call_lands_on_its_question():
    model = ScriptedModel(rules=RULES, default=DEFAULT, fail_on="Question 3 ")
    serializer(model, max_batch=6)
    got = solve_concurrently(lambda: LiveMindController(model), ROWS[:6], TimingConfig(profile=PROFILE), 6)
    errors = {r["question_id"]: r["error"] for r in got}
    assert errors[3] and "scripted failure" in errors[3]
    assert all(e is None for q, e in errors.items() if q != 3)


def test_concurrency_stops_taking_questions_on_request():
    seen = []
    got = solve_concurrently(lambda: LiveMindController(_scripted(1)), ROWS, TimingConfig(profile=PROFILE), 2,
                             on_record=lambda r: seen.append(r) or len(seen) >= 3)
    assert 3 <= len(got) <= 4 and len(seen) == len(got)


def test_batched_decoding_is_a_construction_option_only_for_fallback_models():
    """``--concurrency N`` reaches a backend as constructor options, decided before it loads:
    an async engine where there is one, else batched decoding where the backend has it."""
    decoder = replace(Capabilities(), batch_decode=True)
    both = replace(decoder, async_engine=True)
    assert construction_options(decoder, concurrency=8, batch=True) == {"batch_decode": True}
    assert construction_options(both, concurrency=8, batch=True) == {"async_engine": True}
    assert construction_options(decoder, concurrency=1, batch=True) == {}
    assert construction_options(decoder, concurrency=8, batch=False) == {}, "the server's sessions do not batch-decode"
    assert construction_options(Capabilities(), concurrency=8, batch=True) == {}


@pytest.mark.model
def test_embedded_model_with_prefix_reuse_at_1_and_14(embedded_model):
    """The real model (prefix reuse on): every question whose replies are identical at
    N = 1 and N = 14 has identical time_info, usage and modelled cache."""
    from live_mind.data import load_sample_questions

    rows = load_sample_questions()[:4]
    timing = TimingConfig(profile=PROFILE)

    def make():
        return LiveMindController(embedded_model, prompt_format=make_format("UA-SPI"), prime_actions=True,
                                  constrain_actions=True, max_new_tokens=6, final_max_new_tokens=6)

    embedded_model.clear_prefix_cache()
    sequential = solve_concurrently(make, rows, timing, 1)
    embedded_model.clear_prefix_cache()
    embedded_model.batch_decode = True  # as cli.load_models builds it for --concurrency 14
    serializer(embedded_model, max_batch=14)
    try:
        got = {r["question_id"]: r for r in solve_concurrently(make, rows, timing, 14)}
    finally:
        embedded_model.batch_decode = False
        serializer(embedded_model, max_batch=1)
    same = [r for r in sequential if [s["response"] for s in r["steps"]] == [s["response"] for s in got[r["question_id"]]["steps"]]]
    assert len(same) >= 1
    for record in same:
        assert _strip(got[record["question_id"]]) == _strip(record)
    assert all(r["usage"]["cached_tokens"][-1] > 0 for r in sequential if not r["error"])


# --------------------------------------------------------------------------- exact re-modelling


def test_replay_drops_a_call_that_would_start_after_the_input_completed():
    """A 12 s fixed cost moves the first call past the input's completion (15.75 s): the
    real run cuts it there and never makes the second; the replay of a cheap run agrees
    (12.0 s, flagged approximate: the cheap run kept both calls), the replay of the run
    made under the profile itself is exact."""
    from live_mind.analysis.remodel import replay

    fixed = CostProfile("fixed12", fixed=12.0, uncached=0.0, cached=0.0, completion=0.0)
    cheap = solve_question(LiveMindController(_scripted(1)), ROW, TimingConfig(cancel_on_complete=True, profile=PROFILE))
    real = solve_question(LiveMindController(_scripted(2)), ROW, TimingConfig(cancel_on_complete=True, profile=fixed))
    assert real["time_info"]["latency"] == pytest.approx(12.0)
    assert [s["cancelled"] for s in real["steps"]] == [True, False]  # call 2 was never made
    assert not any(s["cancelled"] for s in cheap["steps"]) and len(cheap["steps"]) == 3
    approximate = replay(cheap, fixed, cancel_on_complete=True)
    assert approximate.latency == pytest.approx(12.0) and not approximate.exact
    assert "dropped" in approximate.reason and "cut" in approximate.reason
    exact = replay(real, fixed)
    assert exact.latency == pytest.approx(12.0) and exact.exact
    assert replay(cheap, PROFILE).exact  # its own profile: every call as the run made it


def test_replay_without_cancellation_is_exact_under_any_profile():
    from live_mind.analysis.remodel import replay

    fixed = CostProfile("fixed12", fixed=12.0, uncached=0.0, cached=0.0, completion=0.0)
    record = solve_question(LiveMindController(_scripted(1)), ROW, TimingConfig(profile=PROFILE))
    real = solve_question(LiveMindController(_scripted(2)), ROW, TimingConfig(profile=fixed))
    result = replay(record, fixed)
    assert result.exact and result.latency == pytest.approx(real["time_info"]["latency"])


# --------------------------------------------------------------------------- fit_profile refuses batch times


def test_fit_profile_refuses_runs_with_batch_times(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    records = [solve_question(LiveMindController(_scripted(i)), r, TimingConfig()) for i, r in enumerate(ROWS[:4])]
    run = tmp_path / "run.json"
    run.write_text(json.dumps(records))
    run.with_suffix(".config.json").write_text(json.dumps({"script": "time_info", "concurrency": 8}))
    command = [sys.executable, str(root / "fit_profile.py"), str(run), "--name", "mine"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--concurrency 8" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    allowed = subprocess.run([*command, "--allow_batch_times"], capture_output=True, text=True, timeout=120)
    assert allowed.returncode == 0 and "[profiles.mine]" in allowed.stdout
    run.with_suffix(".config.json").write_text(json.dumps({"script": "time_info", "concurrency": 1}))
    assert subprocess.run(command, capture_output=True, text=True, timeout=120).returncode == 0


def test_summary_and_prefill_report_show_modelled_and_engine_cache(tmp_path, capsys):
    import importlib.util
    import json
    from pathlib import Path

    from live_mind.summary import summarize

    model = BatchCounting(rules=RULES, default=DEFAULT, reuses_prefixes=True)
    records = solve_concurrently(_ua_spi(model), ROWS[:3], TimingConfig(profile=PROFILE), 1)
    modelled = sum(sum(r["usage"]["cached_tokens"]) for r in records)
    engine = sum(sum(r["usage"]["engine_cached_tokens"]) for r in records)
    assert f"modelled {modelled:,}" in summarize(records) and f"engine-reported {engine:,}" in summarize(records)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(records))
    spec = importlib.util.spec_from_file_location("prefill_report", Path(__file__).resolve().parents[1] / "benchmarks" / "prefill_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    assert report.main([str(path)]) == 0
    row = capsys.readouterr().out.splitlines()[-1]
    assert f"| {modelled:,} | {engine:,} |" in row


def test_a_profile_may_name_a_cache_block():
    from live_mind.profiles import ProfileError, parse_profiles

    table = {"fixed": 0.1, "uncached": 0.01, "cached": 0.001, "completion": 0.1}
    profile = parse_profiles({"profiles": {"blocky": {**table, "cache_block": 32}}}, "src")["blocky"]
    assert profile.cache_block == 32 and "cache_block = 32" in profile.toml_entry()
    assert "cache_block" not in parse_profiles({"profiles": {"plain": table}}, "src")["plain"].as_dict()
    with pytest.raises(ProfileError, match="cache_block"):
        parse_profiles({"profiles": {"bad": {**table, "cache_block": -1}}}, "src")
    model = ScriptedModel(rules=RULES, default=DEFAULT, reuses_prefixes=True)
    record = solve_question(_ua_spi(model)(), ROW, TimingConfig(profile=profile))
    cached = record["usage"]["cached_tokens"]
    assert max(cached) >= 32 and all(c % 32 == 0 for c in cached)
