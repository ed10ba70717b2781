"""Property-based fuzzing: segmenters, the action parser, the answer
extractor, the typing clock and the solver loop on generated inputs.

The ``max_examples`` below add up to more than 10,000 generated cases; texts are kept
short because Punkt on arbitrary unicode slows down on long inputs, and the whole file
runs in well under a minute on two cores.
"""

from __future__ import annotations

import math
import re

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from live_mind.actions import ACTION_SETS, LENIENT, STRICT, WAIT, parse_action
from live_mind.answer import LETTERS, extract_answer, is_correct
from live_mind.clock import OPTIONS_ARRIVALS, arrival_times, simulate, typing_delays
from live_mind.methods.livemind import LiveMindController
from live_mind.models.base import ChatRequest
from live_mind.models.scripted import ScriptedModel
from live_mind.schedule import SCHEDULES
from live_mind.segment import GRANULARITIES, count_sentences, split, split_sentences
from live_mind.solver import TimingConfig, solve_question

PAPER_RULE = re.compile(r"^action ([a-z]+).[ \n]*(.*)$", re.DOTALL)
FUZZ = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

# --------------------------------------------------------------------------- strategies

_any_text = st.text(max_size=120)
_fragments = st.sampled_from(
    ["The", "sky", "is", "blue", "Dr.", "U.S.", "3.5", "1,000", "e.g.", "Why", "?", "!", ".", ",", ";", "...",
     " ", "  ", "\n", "\n\n", "\t", "(A)", "x", "é", "日本語", "\u00a0", "\u2028", "Mr.", "i.e.", "a.m.", "'", '"']
)
_sentence_like = st.lists(st.one_of(_fragments, st.text(max_size=6)), max_size=40).map("".join)

_action_sets = st.sampled_from([ACTION_SETS["CAS"], ACTION_SETS["SAS"], ("inference",), ("background", "wait")])
_names = st.sampled_from(["background", "inference", "hypothesize", "wait", "think", "answer", "infer", "waiting", "action"])
_cased_names = st.tuples(_names, st.sampled_from([str, str.upper, str.title])).map(lambda p: p[1](p[0]))
_prefixes = st.sampled_from(["action ", "Action ", "ACTION: ", "action:", "action - ", "**", "**Action: ", "  ", "", "\n", "> ", "# ", "`", "action\n"])
_separators = st.sampled_from([".", ". ", ":", ": ", " -", " - ", "", "\n", "**", ".** ", " \u2014 ", ",", " "])
_structured_responses = st.tuples(_prefixes, _cased_names, _separators, st.text(max_size=40)).map("".join)


def _check_action(response: str, allowed: tuple[str, ...]) -> None:
    action = parse_action(response, allowed)
    if action is None:
        return
    assert action.name in allowed
    assert action.rule in (STRICT, LENIENT)
    assert action.content == action.content.strip()
    if action.name == WAIT:
        assert action.content == ""
    match = PAPER_RULE.match(response)
    if match and match.group(1) in allowed:  # the paper's rule takes precedence
        assert action.rule == STRICT and action.name == match.group(1)
        assert action.content == ("" if action.name == WAIT else match.group(2).strip())
    if action.rule == STRICT:
        assert match is not None


# --------------------------------------------------------------------------- segmenters


def _check_segments(text: str, granularity: str, min_length: int) -> None:
    segments = split(text, granularity, min_length)
    assert "".join(segments) == text
    assert all(segments)
    if len(segments) > 1 and min_length > 0:
        assert all(len(s.strip()) >= min_length for s in segments)


@settings(max_examples=2500, **FUZZ)
@given(text=_any_text, granularity=st.sampled_from(GRANULARITIES), min_length=st.integers(0, 15))
def test_segments_cover_any_unicode_text(text, granularity, min_length):
    _check_segments(text, granularity, min_length)


@settings(max_examples=1500, **FUZZ)
@given(text=_sentence_like, granularity=st.sampled_from(GRANULARITIES), min_length=st.integers(0, 15))
def test_segments_cover_sentence_like_text(text, granularity, min_length):
    _check_segments(text, granularity, min_length)
    if text.strip():
        assert count_sentences(text) == len(split_sentences(text))


# --------------------------------------------------------------------------- action parser


@settings(max_examples=1500, **FUZZ)
@given(response=_any_text, allowed=_action_sets)
def test_parse_action_any_text(response, allowed):
    _check_action(response, allowed)


@settings(max_examples=1500, **FUZZ)
@given(response=_structured_responses, allowed=_action_sets)
def test_parse_action_action_like_text(response, allowed):
    _check_action(response, allowed)


@settings(max_examples=800, **FUZZ)
@given(name=st.sampled_from(ACTION_SETS["CAS"]), sep=st.sampled_from([".", ":", "\n"]), gap=st.text(" \n", max_size=3),
       content=st.text(max_size=60))
def test_paper_format_always_parses_strictly(name, sep, gap, content):
    action = parse_action(f"action {name}{sep}{gap}{content}", ACTION_SETS["CAS"])
    assert action is not None and action.rule == STRICT and action.name == name
    assert action.content == ("" if name == WAIT else content.strip())


# --------------------------------------------------------------------------- answer extractor


@settings(max_examples=1000, **FUZZ)
@given(text=st.one_of(st.none(), _any_text))
def test_extract_answer_any_text(text):
    letter = extract_answer(text)
    assert letter is None or letter in LETTERS
    for gold in "AJ":
        assert is_correct(text, gold) == (letter == gold)


@settings(max_examples=700, **FUZZ)
@given(before=_any_text, letter=st.sampled_from(LETTERS), paren=st.booleans(), after=_any_text)
def test_extract_answer_finds_the_paper_sentence(before, letter, paren, after):
    assume("answer is" not in before)
    answer = f"({letter})" if paren else letter
    assert extract_answer(f"{before}The answer is {answer}{after}") == letter


# --------------------------------------------------------------------------- clock

_seconds = st.floats(0.0, 30.0, allow_nan=False, allow_infinity=False)


@settings(max_examples=2000, **FUZZ)
@given(
    delays=st.lists(_seconds, max_size=8),
    options_delay=_seconds,
    options_arrival=st.sampled_from(OPTIONS_ARRIVALS),
    data=st.data(),
    final_seconds=_seconds,
    schedule=st.sampled_from(SCHEDULES),
    cancel=st.booleans(),
)
def test_clock_invariants(delays, options_delay, options_arrival, data, final_seconds, schedule, cancel):
    arrivals, options_at = arrival_times(delays, options_delay, options_arrival)
    durations = data.draw(st.lists(_seconds, min_size=len(delays), max_size=len(delays)))
    calls, info = simulate(arrivals, options_at, durations, final_seconds, schedule=schedule, cancel_on_complete=cancel)
    *inference, final = calls

    previous_end = 0.0
    charged = []
    for k, call in enumerate(inference):
        assert call.start >= previous_end
        assert call.arrival == arrivals[call.segments - 1]
        assert call.start >= call.arrival == max(arrivals[: call.segments])
        assert call.end >= call.start
        if call.cancelled:
            assert cancel and call.end == options_at and call.start < options_at < call.start + durations[k]
        else:
            assert call.end == call.start + durations[k]
        if cancel or schedule == "latest":
            assert call.start < options_at  # nothing starts once the input is complete
        if schedule == "every":
            assert call.segments == k + 1
        else:
            assert call.segments == sum(1 for a in arrivals if a <= call.start)
            assert k == 0 or call.segments > inference[k - 1].segments
        charged.append(call.end - call.start)
        previous_end = call.end
    if schedule == "every" and not cancel:
        assert len(inference) == len(arrivals)

    assert (final.segments, final.arrival) == (len(arrivals), options_at)
    assert final.start == max(previous_end, options_at) and final.end == final.start + final_seconds
    assert info.current_time == final.end
    assert info.latency >= 0.0 and info.latency == final.end - options_at
    assert math.isclose(info.total_gen_time, sum(charged) + final_seconds, rel_tol=1e-9, abs_tol=1e-9)
    assert info.overhead_time >= 0.0
    assert info.overhead_time == max(0.0, previous_end - options_at)
    if cancel:
        assert info.overhead_time == 0.0


@settings(max_examples=500, **FUZZ)
@given(
    texts=st.lists(st.text(max_size=30), max_size=6),
    speed=st.floats(0.001, 2.0),
    sigma=st.floats(0.0, 5.0),
    seed=st.one_of(st.none(), st.integers(0, 2**32)),
)
def test_typing_delays_invariants(texts, speed, sigma, seed):
    delays = typing_delays(texts, speed, sigma, seed)
    assert len(delays) == len(texts) and all(d >= 0.0 and math.isfinite(d) for d in delays)
    if seed is not None:
        assert delays == typing_delays(texts, speed, sigma, seed)
    arrivals, _ = arrival_times(delays, 0.0)
    assert all(b >= a for a, b in zip(arrivals, arrivals[1:]))


# --------------------------------------------------------------------------- solver loop


def _reply_from(replies: list[str]):
    state = {"i": 0}

    def respond(request: ChatRequest) -> str:
        if not request.messages[0]["content"].startswith("You are reading"):
            return "The answer is (A)."
        state["i"] += 1
        return replies[(state["i"] - 1) % len(replies)]

    return respond


@settings(max_examples=300, **FUZZ)
@given(
    question=_sentence_like,
    replies=st.lists(st.one_of(_structured_responses, st.text(max_size=20)), min_size=1, max_size=4),
    seconds=st.lists(st.floats(0.0, 20.0), min_size=1, max_size=4),
    schedule=st.sampled_from(SCHEDULES),
    cancel=st.booleans(),
    options_arrival=st.sampled_from(OPTIONS_ARRIVALS),
)
def test_solver_records_are_consistent(question, replies, seconds, schedule, cancel, options_arrival):
    row = {"question_id": 1, "question": question, "options": ["x", "y"], "answer": "A", "answer_index": 0,
           "cot_content": "", "category": "other", "src": "fuzz"}
    model = ScriptedModel(responder=_reply_from(replies), seconds=seconds)
    timing = TimingConfig(schedule=schedule, cancel_on_complete=cancel, options_arrival=options_arrival)
    record = solve_question(LiveMindController(model), row, timing)
    if not question.strip():
        assert record["error"] == "empty question"
        return
    assert record["error"] is None and record["correct"] and record["pred"] == "A"
    steps = record["steps"]
    assert len(steps) == len(model.calls) and all(len(v) == len(steps) for v in record["usage"].values())
    assert [s["kind"] for s in steps] == ["inference"] * (len(steps) - 1) + ["final"]
    assert all(b["start"] >= a["end"] for a, b in zip(steps, steps[1:]))
    assert all(s["start"] >= s["arrival"] for s in steps)
    assert record["time_info"]["latency"] >= 0 and record["time_info"]["overhead_time"] >= 0
    kept = [s for s in steps if s["action"] not in (None, "wait", "unparsed", "cancelled")]
    assert [a["step"] for a in record["actions"]] == [steps.index(s) for s in kept]
