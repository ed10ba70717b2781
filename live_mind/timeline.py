"""One question's typed input on the simulated clock, as every method sees it (paper §4.1).

The driver (``solver.py``) owns time: it types the question segment by segment at the
run's speed and hands a method a ``QuestionInput`` -- the segments, when each arrives,
when the options (the complete input) arrive, and how each call is charged
(``TimingConfig``).  The method decides which calls to make and asks the clock built
here (``QuestionInput.clock``: the schedule rules of ``schedule.py``) when they start.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .clock import PAPER_SECONDS_PER_CHAR, SimulatedClock, arrival_times, typing_delays
from .data import format_options, typed_options
from .models.base import Completion
from .profiles import CostProfile
from .segment import typed_pieces


@dataclass(frozen=True, kw_only=True)
class TimingConfig:
    """How the simulated user types and how calls are scheduled (built by keyword)."""

    typing_speed: float = PAPER_SECONDS_PER_CHAR  # seconds per character
    jitter_sigma: float = 0.0
    seed: int | None = None
    schedule: str = "every"
    options_arrival: str = "typed"
    cancel_on_complete: bool = False
    profile: CostProfile | None = None  # None: measured wall time
    prefill_while_typing: bool = False  # LiveMind only; see prefill.py
    answer_profile: CostProfile | None = None
    """Profile of the answering model's calls (final, CoT, prefill) when it differs from the
    inference model's (``--timing model`` with collaborative inference); None: ``profile``."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def charge(self, completion: Completion, answering: bool = False) -> float:
        """Seconds a call takes on the simulated timeline: modelled from its tokens under
        the profile of the model that made it (``answering``: the output model's), else
        its measured wall time."""
        profile = (self.answer_profile or self.profile) if answering else self.profile
        if profile is None:
            return completion.seconds
        return profile.completion_seconds(completion)


def tokens_before(timing: TimingConfig, start: float, until: float, answering: bool = True) -> int | None:
    """How many tokens a call starting at ``start`` can generate before ``until`` under the
    run's profile (at least 1; the prompt's cost is not known yet, so it is left out), or
    ``None`` under measured timing, where it cannot be known in advance."""
    profile = (timing.answer_profile or timing.profile) if answering else timing.profile
    if profile is None or profile.completion <= 0:
        return None
    return max(1, int((until - start - profile.fixed) / profile.completion))


def question_timeline(question: str, options_text: str, segments: list[str], timing: TimingConfig, salt: int = 0) -> tuple[list[float], float, list[float]]:
    """Segment arrivals, options arrival and the typing delays (segments, then options):
    the one typed timeline, for the real-time solver and the batched mode's timestamps.

    ``options_text`` is the options as typed (``data.typed_options``).  Each segment is
    charged for the characters the v1 user types (``segment.typed_pieces``: whitespace
    between sentences is not typed), so the input is complete at 0.25 s x (Punkt
    sentence characters + options characters), as in every published v1 record."""
    seed = None if timing.seed is None else timing.seed + salt
    typed = typed_pieces(question, segments)
    delays = typing_delays([*typed, options_text], timing.typing_speed, timing.jitter_sigma, seed)
    arrivals, options_at = arrival_times(delays[:-1], delays[-1], timing.options_arrival)
    return arrivals, options_at, delays


def baseline_input_complete(question: str, options_text: str, timing: TimingConfig, salt: int = 0) -> float:
    """When the CoT baseline's input is complete: the v1 baseline types the whole
    question (every character, spaces included) and then the options."""
    seed = None if timing.seed is None else timing.seed + salt
    delays = typing_delays([question, options_text], timing.typing_speed, timing.jitter_sigma, seed)
    return sum(delays) if timing.options_arrival == "typed" else delays[0]


def salt(row: dict[str, Any]) -> int:
    """Per-question offset of the jitter seed, so questions get different jitter."""
    qid = row.get("question_id")
    return int(qid) if isinstance(qid, int) else 0


@dataclass(frozen=True)
class QuestionInput:
    """One question as the simulated user types it: what a method is given."""

    row: dict[str, Any]
    text: str
    segments: list[str]
    options_text: str  # the options as the prompts show them (data.format_options)
    typed: str  # the options as the user types them (data.typed_options)
    arrivals: list[float]  # when each segment arrives
    complete_at: float  # when the options arrive: the input is complete
    timing: TimingConfig

    @classmethod
    def typed_by(cls, row: dict[str, Any], segments: list[str], timing: TimingConfig) -> QuestionInput:
        """The question of ``row``, split into ``segments``, typed under ``timing``."""
        text, typed = row.get("question") or "", typed_options(row["options"])
        arrivals, complete_at, _ = question_timeline(text, typed, segments, timing, salt=salt(row))
        return cls(row, text, segments, format_options(row["options"]), typed, arrivals, complete_at, timing)

    @property
    def options_count(self) -> int:
        return len(self.row["options"])

    @property
    def baseline_complete_at(self) -> float:
        """When the v1 CoT baseline's input is complete (it types every character)."""
        return baseline_input_complete(self.text, self.typed, self.timing, salt=salt(self.row))

    def clock(self) -> SimulatedClock:
        """A fresh clock on this input, with the run's schedule rules."""
        return SimulatedClock(list(self.arrivals), self.complete_at, self.timing.schedule, self.timing.cancel_on_complete)
