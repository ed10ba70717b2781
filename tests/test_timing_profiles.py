"""Token-cost timing: profile arithmetic, profile files, and the clock under a profile.

Profile used throughout: 0.5 s per call, 0.01 s per uncached prompt token, 0.001 s per
cached prompt token, 0.1 s per completion token.  The test question (see
``test_solver.py``) has segments arriving at 4.25 and 8.0 s and its options at 15.75 s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Sequence

import pytest

from live_mind.methods.cot import CoTController
from live_mind.methods.livemind import LiveMindController
from live_mind.models.base import ChatRequest, Completion
from live_mind.models.scripted import ScriptedModel
from live_mind.profiles import CostProfile, ProfileError, load_profiles, parse_profiles, read_profiles, resolve
from live_mind.solver import TimingConfig, solve_question

PROFILE = CostProfile("test", fixed=0.5, uncached=0.01, cached=0.001, completion=0.1)
ROW = {"question_id": 11, "question": "The sky is blue. Why is it blue?", "options": ["red", "blue"], "answer": "B",
       "answer_index": 1, "cot_content": "", "category": "physics", "src": "test"}


@dataclass
class TokenModel:
    """Replies with an action (inference calls) or an answer, reporting the given token
    counts ``(prompt, cached, completion)`` call by call and a random wall time."""

    usages: list[tuple[int, int, int]]
    name: str = "tokens"
    seen: list[ChatRequest] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        out = []
        for request in requests:
            p, c, k = self.usages[len(self.seen)]
            self.seen.append(request)
            final = not request.messages[0]["content"].startswith("You are reading")
            text = "The answer is (B)." if final else "action background. light scatters"
            out.append(Completion(text, p, k, self.rng.uniform(0.1, 30.0), cached_tokens=c))
        return out


# --------------------------------------------------------------------------- arithmetic


def test_call_seconds_split_cached_and_uncached_prompt_tokens():
    assert PROFILE.seconds(100, 0, 10) == pytest.approx(0.5 + 1.0 + 1.0)
    assert PROFILE.seconds(150, 100, 20) == pytest.approx(0.5 + 0.5 + 0.1 + 2.0)
    assert PROFILE.seconds(10, 50, 0) == pytest.approx(0.5 + 0.01)  # cached clamped to the prompt
    assert PROFILE.completion_seconds(Completion("x", 200, 5, 99.0, cached_tokens=150)) == pytest.approx(1.65)


def test_batch_seconds_one_fixed_cost_plus_token_sums():
    usages = [(100, 0, 10), (150, 100, 20)]
    assert PROFILE.batch_seconds(usages) == pytest.approx(0.5 + (1.0 + 1.0) + (0.5 + 0.1 + 2.0))
    assert PROFILE.batch_seconds(usages[:1]) == pytest.approx(PROFILE.seconds(100, 0, 10))
    assert PROFILE.batch_seconds([]) == 0.0


def test_toml_entry_round_trips(tmp_path):
    profile = CostProfile("mine", -0.06, 0.000254, 0.0, 0.01014, description='a "quoted" one', machine="2 cores")
    path = tmp_path / "p.toml"
    path.write_text(profile.toml_entry(), encoding="utf-8")
    assert read_profiles(path)["mine"] == profile


def test_packaged_profiles_and_user_file(tmp_path):
    packaged = load_profiles()
    assert {"paper-llama-3-70b", "paper-llama-3-8b"} <= set(packaged)
    assert packaged["paper-llama-3-8b"].completion == pytest.approx(0.01014)
    user = tmp_path / "user.toml"
    user.write_text("[profiles.paper-llama-3-8b]\nfixed = 0\nuncached = 0\ncached = 0\ncompletion = 1\n"
                    "[profiles.extra]\nfixed = 1\nuncached = 0\ncached = 0\ncompletion = 0\n", encoding="utf-8")
    merged = load_profiles(user)
    assert merged["paper-llama-3-8b"].completion == 1.0 and "extra" in merged and "paper-llama-3-70b" in merged
    assert resolve("measured") is None and resolve(None) is None
    assert resolve("extra", user).fixed == 1.0


@pytest.mark.parametrize("text, fragment", [
    ("[profiles.x]\nfixed = 1\nuncached = 0\ncached = 0\n", "completion must be a number"),
    ("[profiles.x]\nfixed = 1\nuncached = 0\ncached = 0\ncompletion = 0\nspeed = 2\n", "unknown key"),
    ("[profiles.measured]\nfixed = 1\nuncached = 0\ncached = 0\ncompletion = 0\n", "reserved"),
    ("fixed = 1\n", "no [profiles.NAME]"),
    ("[profiles.x\n", "cannot read"),
])
def test_bad_profile_files_are_one_line_errors(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match=fragment.replace("[", r"\[")) as info:
        read_profiles(path)
    assert "\n" not in str(info.value)


def test_unknown_profile_lists_the_choices():
    with pytest.raises(ProfileError, match="paper-llama-3-70b"):
        resolve("no-such-profile")
    with pytest.raises(ProfileError, match="is not a table"):
        parse_profiles({"profiles": {"x": 1}}, "src")


# --------------------------------------------------------------------------- the clock


def _spans(record):
    return [t for s in record["steps"] for t in (s["start"], s["end"])]


def _livemind(usages):
    return solve_question(LiveMindController(TokenModel(usages)), ROW, TimingConfig(profile=PROFILE))


def test_model_idle_when_input_completes():
    # v1 typing: sentences as Punkt returns them (16 + 15 characters), then the options
    # with a newline after each (32 characters): arrivals 4.0, 7.75, options 15.75.
    # 2.5 s: 4.0-6.5; 3.1 s: 7.75-10.85; final 1.65 s: 15.75-17.4
    record = _livemind([(100, 0, 10), (150, 100, 20), (200, 150, 5)])
    assert _spans(record) == pytest.approx([4.0, 6.5, 7.75, 10.85, 15.75, 17.4])
    assert record["time_info"] == pytest.approx({"current_time": 17.4, "latency": 1.65, "total_gen_time": 7.25,
                                                 "overhead_time": 0.0})
    assert all(s["seconds"] != s["end"] - s["start"] for s in record["steps"])  # measured seconds kept as measured


def test_model_busy_when_input_completes():
    # second call 11.1 s: 7.75-18.85, still busy at 15.75 (overhead 3.1); final 18.85-20.5
    record = _livemind([(100, 0, 10), (150, 100, 100), (200, 150, 5)])
    assert _spans(record) == pytest.approx([4.0, 6.5, 7.75, 18.85, 18.85, 20.5])
    assert record["time_info"] == pytest.approx({"current_time": 20.5, "latency": 4.75, "total_gen_time": 15.25,
                                                 "overhead_time": 3.1})


def test_cancel_on_complete_under_a_profile():
    timing = TimingConfig(cancel_on_complete=True, profile=PROFILE)
    record = solve_question(LiveMindController(TokenModel([(100, 0, 10), (150, 100, 100), (200, 150, 5)])), ROW, timing)
    assert record["steps"][1]["action"] == "cancelled" and record["steps"][1]["end"] == pytest.approx(15.75)
    assert record["time_info"]["latency"] == pytest.approx(1.65)


def test_baseline_latency_is_the_modelled_call():
    record = solve_question(CoTController(TokenModel([(300, 0, 40)])), ROW, TimingConfig(profile=PROFILE))
    # the v1 baseline types the whole question (32 characters, the space included) + options
    assert record["time_info"] == pytest.approx({"current_time": 16.0 + 7.5, "latency": 7.5, "total_gen_time": 7.5,
                                                 "overhead_time": 0.0})


def test_measured_timing_is_unchanged_without_a_profile():
    model = ScriptedModel(seconds=[2.0])
    record = solve_question(CoTController(model), ROW, TimingConfig())
    assert record["time_info"]["latency"] == 2.0


# --------------------------------------------------------------------------- determinism and batching


def _scripted(seed: int) -> ScriptedModel:
    """Greedy stand-in: same replies every run, but a different (random) wall time per call."""
    rng = random.Random(seed)
    return ScriptedModel(rules=[("problem so far|so far", "action inference. the sky scatters blue light")],
                         default="Blue light scatters more. The answer is (B).",
                         seconds=[rng.uniform(0.1, 20.0) for _ in range(50)])


ROWS = [dict(ROW, question_id=i, question=f"Question {i} is long. " * (1 + i % 3) + "Which one?") for i in range(20)]


def test_two_runs_under_a_profile_give_identical_time_info():
    timing = TimingConfig(profile=PROFILE)
    first = [solve_question(LiveMindController(_scripted(1)), r, timing)["time_info"] for r in ROWS]
    second = [solve_question(LiveMindController(_scripted(2)), r, timing)["time_info"] for r in ROWS]
    assert first == second
    measured = [solve_question(LiveMindController(_scripted(3)), r, TimingConfig())["time_info"] for r in ROWS]
    assert measured != first


def test_modelled_seconds_never_negative():
    eight_b = CostProfile("8b", fixed=-0.060, uncached=0.000254, cached=0.0, completion=0.01014)
    assert eight_b.seconds(10, 10, 0) == 0.0
    assert eight_b.batch_seconds([(10, 10, 0)]) == 0.0
    assert eight_b.seconds(1000, 0, 100) == pytest.approx(-0.060 + 0.254 + 1.014)
