"""The simulated typing clock (paper §4.1 "latency"; v1 semantics, v2 options).

A simulated user types at ``seconds_per_char`` (0.25 s in the paper).  Segment *i*
arrives when its last character is typed; the options are typed after the question
(v1, ``typed``) or arrive with its last character (v2, ``instant``).  The model runs one
call at a time.  Each call's duration -- its measured wall time, or its time modelled
from its tokens by a cost profile (``profiles.py``) -- is charged on this simulated
timeline, so results do not depend on how fast the machine happens to type.

v1 rules (the defaults), as the paper's real-time solver applies them:

* inference call *i* (for segment *i*) starts at ``max(model free, arrival_i)``;
* the final call starts at ``max(model free, options arrival)``;
* ``latency`` = end of the final call - options arrival;
* ``overhead_time`` = how long the model was still busy when the options arrived;
* ``total_gen_time`` = the sum of all charged call times; ``current_time`` = end of the
  final call.

Options beyond v1: ``schedule="latest"`` takes every segment that arrived
while the model was busy into one call; ``cancel_on_complete`` cuts an inference call
still running when the complete input arrives (charged only up to that moment, output
dropped) and starts none after it.  Under ``latest`` no inference call starts once the
input is complete either.

``SimulatedClock`` is incremental because under ``latest`` the next call's input
depends on when the previous call ended; ``simulate`` runs it over known durations.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Callable, Sequence

from .schedule import check_schedule, next_visible

PAPER_SECONDS_PER_CHAR = 0.25
"""The paper's simulated typing speed (§4.1): seconds per character.  Every script's
``--typing_speed`` default and every typing function's default is this constant."""

OPTIONS_ARRIVALS = ("typed", "instant")


def check_typing_speed(seconds_per_char: float) -> None:
    """The one rule for a typing speed, wherever one is given (scripts, replay, the
    server): it must be > 0 seconds per character.  Raises ``ValueError``."""
    if not seconds_per_char > 0:
        raise ValueError("typing_speed must be > 0 (seconds per character)")


def typing_delays(
    texts: Sequence[str], seconds_per_char: float = PAPER_SECONDS_PER_CHAR, jitter_sigma: float = 0.0, seed: int | None = None
) -> list[float]:
    """Time to type each text: ``seconds_per_char * n`` plus optional N(0, (sigma*sqrt n)^2)
    jitter, never below zero.  ``seed`` makes the jitter reproducible."""
    check_typing_speed(seconds_per_char)
    rng = random.Random(seed)
    delays = []
    for text in texts:
        n = len(text)
        delay = seconds_per_char * n
        if jitter_sigma > 0 and n:
            delay += rng.gauss(0.0, jitter_sigma * math.sqrt(n))
        delays.append(max(0.0, delay))
    return delays


class RealTimeTypist:
    """Types text at ``seconds_per_char`` of *real* time (the live session's replay and
    the server's HTTP endpoint): character *n* (counted across every ``type`` call) is
    handed to ``on_char(i, ch)`` once ``n * seconds_per_char`` seconds have passed since
    the typist was made; ``i`` is the character's index in the text being typed."""

    def __init__(self, seconds_per_char: float = PAPER_SECONDS_PER_CHAR,
                 sleep: Callable[[float], None] = time.sleep, now: Callable[[], float] = time.perf_counter) -> None:
        check_typing_speed(seconds_per_char)
        self.seconds_per_char, self.sleep, self.now = seconds_per_char, sleep, now
        self.start, self.typed = now(), 0

    def type(self, text: str, on_char: Callable[[int, str], None], stop: Callable[[], bool] | None = None) -> None:
        """Type ``text``; ``stop()`` true before a character ends the typing there (the
        typist left)."""
        for i, ch in enumerate(text):
            if stop is not None and stop():
                return
            self.typed += 1
            delay = self.start + self.typed * self.seconds_per_char - self.now()
            if delay > 0:
                self.sleep(delay)
            on_char(i, ch)


def arrival_times(segment_delays: Sequence[float], options_delay: float, options_arrival: str = "typed") -> tuple[list[float], float]:
    """Arrival time of each segment and of the options (the complete input)."""
    if options_arrival not in OPTIONS_ARRIVALS:
        raise ValueError(f"options_arrival must be one of {OPTIONS_ARRIVALS}")
    arrivals = list(accumulate(segment_delays))
    last = arrivals[-1] if arrivals else 0.0
    return arrivals, last + (options_delay if options_arrival == "typed" else 0.0)


@dataclass(frozen=True)
class CallTime:
    """One model call on the simulated timeline."""

    segments: int  # segments visible to the call (final call: all)
    arrival: float  # arrival of the newest visible segment (final: of the options)
    start: float
    end: float
    cancelled: bool = False

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class TimeInfo:
    """The v1 ``time_info`` record."""

    current_time: float
    latency: float
    total_gen_time: float
    overhead_time: float

    def as_dict(self) -> dict[str, float]:
        return {
            "current_time": self.current_time,
            "latency": self.latency,
            "total_gen_time": self.total_gen_time,
            "overhead_time": self.overhead_time,
        }


@dataclass
class SimulatedClock:
    """Charges model calls on the simulated timeline of one question."""

    arrivals: list[float]
    options_arrival: float
    schedule: str = "every"
    cancel_on_complete: bool = False
    free_at: float = 0.0
    consumed: int = 0
    calls: list[CallTime] = field(default_factory=list)
    busy_at_complete: float | None = None

    def __post_init__(self) -> None:
        check_schedule(self.schedule)

    def next_inference(self) -> tuple[int, float] | None:
        """``(visible segments, start time)`` of the next inference call, or ``None`` when
        the inference stage is over: the call starts once the model is free and the next
        segment has arrived, and sees what ``schedule.next_visible`` gives it then."""
        if self.consumed >= len(self.arrivals):
            return None
        start = max(self.free_at, self.arrivals[self.consumed])
        arrived = sum(1 for a in self.arrivals if a <= start)
        visible = next_visible(self.schedule, self.cancel_on_complete, self.consumed, arrived, start >= self.options_arrival)
        return (visible, start) if visible else None

    def charge_inference(self, segments: int, start: float, seconds: float) -> CallTime:
        """Charge an inference call that began at ``start`` and took ``seconds``."""
        end = start + seconds
        cancelled = self.cancel_on_complete and start < self.options_arrival < end
        if cancelled:
            end = self.options_arrival
        call = CallTime(segments, self.arrivals[segments - 1], start, end, cancelled)
        self.calls.append(call)
        self.free_at = end
        self.consumed = segments
        return call

    def charge_prefill(self, arrival: float, start: float, seconds: float) -> CallTime:
        """Charge a prefill-only call (prefill while typing) that read the text arrived by
        ``arrival``; it occupies the model like any call, so one still running when the
        input completes delays the final call."""
        call = CallTime(len(self.arrivals), arrival, start, start + seconds)
        self.calls.append(call)
        self.free_at = call.end
        return call

    def charge_final(self, seconds: float) -> CallTime:
        """Charge the final (output) call."""
        self.busy_at_complete = self.free_at
        start = max(self.free_at, self.options_arrival)
        call = CallTime(len(self.arrivals), self.options_arrival, start, start + seconds)
        self.calls.append(call)
        self.free_at = call.end
        return call

    def time_info(self) -> TimeInfo:
        """The v1 ``time_info`` after the final call."""
        if self.busy_at_complete is None:
            raise RuntimeError("time_info() before charge_final()")
        final = self.calls[-1]
        return TimeInfo(
            current_time=final.end,
            latency=final.end - self.options_arrival,
            total_gen_time=sum(c.seconds for c in self.calls),
            overhead_time=max(0.0, self.busy_at_complete - self.options_arrival),
        )


def simulate(
    arrivals: Sequence[float],
    options_arrival: float,
    inference_seconds: Sequence[float],
    final_seconds: float,
    *,
    schedule: str = "every",
    cancel_on_complete: bool = False,
) -> tuple[list[CallTime], TimeInfo]:
    """Run the clock over known call durations (call *k* takes ``inference_seconds[k]``;
    calls the schedule does not make are not charged)."""
    clock = SimulatedClock(list(arrivals), options_arrival, schedule, cancel_on_complete)
    durations = iter(inference_seconds)
    while (plan := clock.next_inference()) is not None:
        clock.charge_inference(plan[0], plan[1], next(durations))
    clock.charge_final(final_seconds)
    return clock.calls, clock.time_info()


def baseline_time_info(options_arrival: float, seconds: float) -> TimeInfo:
    """The CoT baseline: one call on the complete input; latency = its time."""
    return TimeInfo(options_arrival + seconds, seconds, seconds, 0.0)
