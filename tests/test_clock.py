"""The simulated typing clock (paper §4.1).

Every expected number below was worked out by hand from the rules in ``clock.py``'s
docstring; the comments show the arithmetic.  Durations are multiples of 0.25 so the
floating-point results are exact.
"""

from __future__ import annotations

import random

import pytest

from live_mind.clock import (
    CallTime,
    SimulatedClock,
    TimeInfo,
    arrival_times,
    baseline_time_info,
    simulate,
    typing_delays,
)

# Two segments of 4 and 8 characters, options of 2 characters, 0.25 s per character:
# delays 1.0, 2.0, 0.5 -> segments arrive at 1.0 and 3.0; options at 3.5 (typed) or 3.0 (instant).
TEXTS = ["abcd", "efghijkl", "xy"]


def _timeline(options_arrival: str = "typed") -> tuple[list[float], float]:
    delays = typing_delays(TEXTS)
    assert delays == [1.0, 2.0, 0.5]
    return arrival_times(delays[:-1], delays[-1], options_arrival)


def _spans(calls: list[CallTime]) -> list[tuple[int, float, float, float, bool]]:
    return [(c.segments, c.arrival, c.start, c.end, c.cancelled) for c in calls]


# --------------------------------------------------------------------------- typing


def test_typing_delays_and_arrivals():
    assert typing_delays(["", "a", "abc"], 0.5) == [0.0, 0.5, 1.5]
    assert arrival_times([1.0, 2.0], 0.5, "typed") == ([1.0, 3.0], 3.5)
    assert arrival_times([1.0, 2.0], 0.5, "instant") == ([1.0, 3.0], 3.0)
    assert arrival_times([], 2.0) == ([], 2.0)


@pytest.mark.parametrize("speed", [0.0, -0.25])
def test_typing_speed_must_be_positive(speed):
    with pytest.raises(ValueError, match="typing_speed must be > 0"):
        typing_delays(["abc"], speed)


def test_unknown_options_arrival():
    with pytest.raises(ValueError, match="options_arrival must be one of"):
        arrival_times([1.0], 1.0, "later")


def test_jitter_is_reproducible_with_a_seed():
    texts = ["a" * n for n in (5, 17, 1, 40, 3)]
    first = typing_delays(texts, 0.25, jitter_sigma=0.3, seed=7)
    assert first == typing_delays(texts, 0.25, jitter_sigma=0.3, seed=7)
    assert first != typing_delays(texts, 0.25, jitter_sigma=0.3, seed=8)
    assert first != typing_delays(texts, 0.25)  # the jitter does change the delays
    # the documented law: 0.25 n + N(0, (sigma sqrt n)^2), drawn in order from Random(seed)
    rng = random.Random(7)
    expected = [max(0.0, 0.25 * len(t) + rng.gauss(0.0, 0.3 * len(t) ** 0.5)) for t in texts]
    assert first == pytest.approx(expected)


def test_jitter_never_negative_and_skips_empty_texts():
    delays = typing_delays(["ab", "", "x" * 3] * 50, 0.01, jitter_sigma=5.0, seed=1)
    assert all(d >= 0.0 for d in delays)
    assert any(d == 0.0 for d in delays[0::3])  # large sigma clips some delays to zero
    assert delays[1::3] == [0.0] * 50  # an empty text takes no time, jitter or not


# --------------------------------------------------------------------------- v1 timelines


def test_model_faster_than_typing():
    arrivals, options_at = _timeline()
    calls, info = simulate(arrivals, options_at, [0.5, 0.25], 2.0)
    # call 1: starts at arrival 1.0, ends 1.5; call 2: starts at arrival 3.0, ends 3.25;
    # final: starts when the options arrive (3.5), ends 5.5.
    assert _spans(calls) == [(1, 1.0, 1.0, 1.5, False), (2, 3.0, 3.0, 3.25, False), (2, 3.5, 3.5, 5.5, False)]
    assert info == TimeInfo(current_time=5.5, latency=2.0, total_gen_time=2.75, overhead_time=0.0)


def test_model_slower_than_typing():
    arrivals, options_at = _timeline()
    calls, info = simulate(arrivals, options_at, [3.0, 3.0], 2.0)
    # call 1: 1.0-4.0; call 2 waits for the model: 4.0-7.0; final waits too: 7.0-9.0.
    # latency 9.0 - 3.5 = 5.5; overhead: busy until 7.0 when options came at 3.5 -> 3.5.
    assert _spans(calls) == [(1, 1.0, 1.0, 4.0, False), (2, 3.0, 4.0, 7.0, False), (2, 3.5, 7.0, 9.0, False)]
    assert info == TimeInfo(current_time=9.0, latency=5.5, total_gen_time=8.0, overhead_time=3.5)
    assert [c.seconds for c in calls] == [3.0, 3.0, 2.0]


def test_instant_options_model_faster():
    arrivals, options_at = _timeline("instant")
    assert options_at == 3.0
    calls, info = simulate(arrivals, options_at, [0.5, 0.25], 2.0)
    # call 2 (3.0-3.25) still runs when the options arrive with the last character at 3.0;
    # final 3.25-5.25; latency 2.25; overhead 0.25.
    assert _spans(calls)[-2:] == [(2, 3.0, 3.0, 3.25, False), (2, 3.0, 3.25, 5.25, False)]
    assert info == TimeInfo(current_time=5.25, latency=2.25, total_gen_time=2.75, overhead_time=0.25)


def test_instant_options_model_slower():
    arrivals, options_at = _timeline("instant")
    calls, info = simulate(arrivals, options_at, [3.0, 3.0], 2.0)
    # 1.0-4.0, 4.0-7.0, final 7.0-9.0; latency 9.0 - 3.0 = 6.0; overhead 7.0 - 3.0 = 4.0.
    assert _spans(calls)[-1] == (2, 3.0, 7.0, 9.0, False)
    assert info == TimeInfo(current_time=9.0, latency=6.0, total_gen_time=8.0, overhead_time=4.0)


def test_incremental_clock_api():
    clock = SimulatedClock([1.0, 3.0], 3.5)
    assert clock.next_inference() == (1, 1.0)
    clock.charge_inference(1, 1.0, 3.0)
    assert clock.next_inference() == (2, 4.0)  # model busy until 4.0
    clock.charge_inference(2, 4.0, 3.0)
    assert clock.next_inference() is None
    with pytest.raises(RuntimeError, match="before charge_final"):
        clock.time_info()
    final = clock.charge_final(2.0)
    assert (final.start, final.end) == (7.0, 9.0)
    assert clock.time_info().as_dict() == {"current_time": 9.0, "latency": 5.5, "total_gen_time": 8.0, "overhead_time": 3.5}


def test_unknown_schedule():
    with pytest.raises(ValueError, match="schedule must be one of"):
        SimulatedClock([1.0], 2.0, schedule="sometimes")


def test_no_segments_only_final_call():
    calls, info = simulate([], 2.0, [], 1.0)
    assert _spans(calls) == [(0, 2.0, 2.0, 3.0, False)]
    assert info == TimeInfo(3.0, 1.0, 1.0, 0.0)


# --------------------------------------------------------------------------- schedules

# Three segments arriving at 1, 2, 3; options at 4; every inference call takes 2.5 s; final 1 s.
ARR3, OPT3 = [1.0, 2.0, 3.0], 4.0


def test_schedule_every_slow_model():
    calls, info = simulate(ARR3, OPT3, [2.5, 2.5, 2.5], 1.0, schedule="every")
    # 1-3.5 (seg 1), 3.5-6 (seg 2), 6-8.5 (seg 3), final 8.5-9.5.
    assert _spans(calls) == [
        (1, 1.0, 1.0, 3.5, False),
        (2, 2.0, 3.5, 6.0, False),
        (3, 3.0, 6.0, 8.5, False),
        (3, 4.0, 8.5, 9.5, False),
    ]
    assert info == TimeInfo(current_time=9.5, latency=5.5, total_gen_time=8.5, overhead_time=4.5)


def test_schedule_latest_takes_everything_that_arrived():
    calls, info = simulate(ARR3, OPT3, [2.5, 2.5], 1.0, schedule="latest")
    # 1-3.5 sees segment 1; at 3.5 segments 2 and 3 have arrived -> one call on all three, 3.5-6;
    # then the input is consumed; final 6-7; latency 3; overhead 6 - 4 = 2.
    assert _spans(calls) == [(1, 1.0, 1.0, 3.5, False), (3, 3.0, 3.5, 6.0, False), (3, 4.0, 6.0, 7.0, False)]
    assert info == TimeInfo(current_time=7.0, latency=3.0, total_gen_time=6.0, overhead_time=2.0)


def test_schedule_latest_fast_model_equals_every():
    every = simulate(ARR3, OPT3, [0.5] * 3, 1.0, schedule="every")
    latest = simulate(ARR3, OPT3, [0.5] * 3, 1.0, schedule="latest")
    assert every == latest
    assert _spans(latest[0]) == [(1, 1.0, 1.0, 1.5, False), (2, 2.0, 2.0, 2.5, False), (3, 3.0, 3.0, 3.5, False), (3, 4.0, 4.0, 5.0, False)]


def test_schedule_latest_starts_no_call_after_completion():
    # options at 3.25: the first call ends at 3.5, after the input is complete -> no second call.
    calls, info = simulate(ARR3, 3.25, [2.5], 1.0, schedule="latest")
    assert _spans(calls) == [(1, 1.0, 1.0, 3.5, False), (3, 3.25, 3.5, 4.5, False)]
    assert info == TimeInfo(current_time=4.5, latency=1.25, total_gen_time=3.5, overhead_time=0.25)


# --------------------------------------------------------------------------- cancel_on_complete


def test_cancel_on_complete_cuts_the_running_call():
    # only two durations are given: a third inference call would raise StopIteration
    calls, info = simulate(ARR3, OPT3, [2.5, 2.5], 1.0, cancel_on_complete=True)
    # 1-3.5; 3.5-6 is cut at 4 (charged 0.5); no call for segment 3; final 4-5.
    assert _spans(calls) == [(1, 1.0, 1.0, 3.5, False), (2, 2.0, 3.5, 4.0, True), (3, 4.0, 4.0, 5.0, False)]
    assert info == TimeInfo(current_time=5.0, latency=1.0, total_gen_time=4.0, overhead_time=0.0)


def test_cancel_on_complete_with_latest():
    calls, info = simulate(ARR3, OPT3, [2.5, 2.5], 1.0, schedule="latest", cancel_on_complete=True)
    # 1-3.5; 3.5-6 on all three segments, cut at 4; final 4-5.
    assert _spans(calls) == [(1, 1.0, 1.0, 3.5, False), (3, 3.0, 3.5, 4.0, True), (3, 4.0, 4.0, 5.0, False)]
    assert info == TimeInfo(current_time=5.0, latency=1.0, total_gen_time=4.0, overhead_time=0.0)


def test_cancel_on_complete_leaves_finished_calls_alone():
    plain = simulate(ARR3, OPT3, [0.5] * 3, 1.0)
    assert simulate(ARR3, OPT3, [0.5] * 3, 1.0, cancel_on_complete=True) == plain
    # a call ending exactly when the options arrive is not cut
    calls, info = simulate(ARR3, OPT3, [0.5, 0.5, 1.0], 1.0, cancel_on_complete=True)
    assert _spans(calls)[2] == (3, 3.0, 3.0, 4.0, False)
    assert info.overhead_time == 0.0


def test_cancel_on_complete_with_instant_options():
    # options arrive with the last character (3.0): call 1 (1-3.5) is cut at 3.0, and no
    # call starts at or after 3.0, so segments 2 and 3 get no inference call.
    calls, info = simulate(ARR3, 3.0, [2.5], 1.0, cancel_on_complete=True)
    assert _spans(calls) == [(1, 1.0, 1.0, 3.0, True), (3, 3.0, 3.0, 4.0, False)]
    assert info == TimeInfo(current_time=4.0, latency=1.0, total_gen_time=3.0, overhead_time=0.0)


# --------------------------------------------------------------------------- baseline


def test_baseline_time_info():
    info = baseline_time_info(3.5, 2.0)
    assert info == TimeInfo(current_time=5.5, latency=2.0, total_gen_time=2.0, overhead_time=0.0)
    assert list(info.as_dict()) == ["current_time", "latency", "total_gen_time", "overhead_time"]
