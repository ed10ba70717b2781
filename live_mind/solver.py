"""The real-time solver: one question through the simulated typing timeline (paper §4.1).

``solve_question`` splits the question into segments, asks the clock when each model
call may start and which segments it sees, runs the controller, charges each call's
time -- measured, or modelled from its tokens by a cost profile (``profiles.py``) -- and
builds the output record.  The model calls themselves run back to back; only the
*simulated* timeline waits for typing.

``question_calls`` is the same procedure as a generator: it yields each
``(model, request)`` it needs and receives the completion, so a driver can keep several
questions in flight and send their pending calls to the backend together
(``concurrency.py``); ``solve_question`` drives it one call at a time.  A model failure (context too
long, backend error after retries) or an empty question yields an error record and the
run goes on.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Generator

from .cachemodel import with_modelled_cache
from .clock import PAPER_SECONDS_PER_CHAR, CallTime, SimulatedClock, arrival_times, baseline_time_info, typing_delays
from .controller import CoTController, LiveMindController
from .data import format_options, typed_options
from .models.base import ChatModel, ChatRequest, Completion, ModelError
from .prefill import next_prefill, options_prefixes
from .profiles import CostProfile
from .records import build_record, error_record
from .segment import typed_pieces

log = logging.getLogger(__name__)


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


Call = tuple[ChatModel, ChatRequest]
QuestionCalls = Generator[Call, Completion, dict[str, Any]]


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


def advance(calls: QuestionCalls, outcome: Completion | ModelError | None = None) -> Call | dict[str, Any]:
    """Hand a question's generator the outcome of its pending call (``None`` starts it):
    returns the next ``(model, request)`` to run, or the finished record.  A ``ModelError``
    goes in as an exception, so it becomes that question's error record."""
    try:
        if outcome is None:
            return next(calls)
        return calls.throw(outcome) if isinstance(outcome, ModelError) else calls.send(outcome)
    except StopIteration as done:
        return done.value


def solve_question(controller: LiveMindController | CoTController, row: dict[str, Any], timing: TimingConfig,
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Solve one MMLU-Pro row in real-time mode (LiveMind or the CoT baseline), one call
    after another."""
    calls = question_calls(controller, row, timing, extra)
    step = advance(calls)
    while isinstance(step, tuple):
        model, request = step
        try:
            step = advance(calls, model.complete([request])[0])
        except ModelError as exc:
            step = advance(calls, exc)
    return step


def question_calls(controller: LiveMindController | CoTController, row: dict[str, Any], timing: TimingConfig,
                   extra: dict[str, Any] | None = None) -> QuestionCalls:
    """``solve_question`` as a generator: yields ``(model, request)``, receives the
    ``Completion`` (a ``ModelError`` thrown in makes the error record), returns the record.
    Under a profile each completion's cached tokens are the question's modelled cache
    (``cachemodel.py``), so no other question in flight can change its timeline."""
    calls = _question_calls(controller, row, timing, extra)
    return calls if timing.profile is None else with_modelled_cache(calls, timing.profile.cache_block)


def _question_calls(controller: LiveMindController | CoTController, row: dict[str, Any], timing: TimingConfig,
                    extra: dict[str, Any] | None = None) -> QuestionCalls:
    mode = controller.mode
    question = row.get("question") or ""
    if not question.strip():
        return error_record(row, mode, "empty question", extra)
    options_text, typed = format_options(row["options"]), typed_options(row["options"])
    segments = controller.segmenter(question)
    controller.reset(cache_key=str(row.get("question_id")))
    try:
        if mode == "cot":
            request = controller.request(segments, True, options_text, len(row["options"]))
            step = controller.accept(request, (yield controller.model_for(True), request), len(segments), True)
            options_at = baseline_input_complete(question, typed, timing, salt=_salt(row))
            info = baseline_time_info(options_at, timing.charge(step.completion, answering=True))
            timings = [CallTime(len(segments), options_at, options_at, info.current_time)]
        else:
            arrivals, options_at, _ = question_timeline(question, typed, segments, timing, salt=_salt(row))
            clock = SimulatedClock(arrivals, options_at, timing.schedule, timing.cancel_on_complete)
            while (plan := clock.next_inference()) is not None:
                visible, start = plan
                request = controller.request(segments[:visible], False)
                completion = yield controller.model_for(False), request
                call = clock.charge_inference(visible, start, timing.charge(completion))
                if call.cancelled:
                    controller.discard(request, completion, visible)
                else:
                    controller.accept(request, completion, visible, False)
            if timing.prefill_while_typing and timing.options_arrival == "typed":
                prefixes = options_prefixes(typed, arrivals[-1] if arrivals else 0.0, options_at)
                done = 0
                while (prefill := next_prefill(prefixes, done, clock.free_at, options_at)) is not None:
                    done, start = prefill
                    request = controller.prefill_request(segments, prefixes[done - 1].text, len(row["options"]))
                    completion = yield controller.model_for(True), request
                    clock.charge_prefill(prefixes[done - 1].arrival, start, timing.charge(completion, answering=True))
                    controller.accept_prefill(request, completion, len(segments))
            request = controller.request(segments, True, options_text, len(row["options"]))
            step = controller.accept(request, (yield controller.model_for(True), request), len(segments), True)
            clock.charge_final(timing.charge(step.completion, answering=True))
            info, timings = clock.time_info(), clock.calls
    except ModelError as exc:
        log.warning("question %s failed: %s", row.get("question_id"), exc)
        return error_record(row, mode, f"{type(exc).__name__}: {exc}", extra)
    return build_record(row, controller.steps, mode, timings, info, extra)


def _salt(row: dict[str, Any]) -> int:
    """Per-question offset of the jitter seed, so questions get different jitter."""
    qid = row.get("question_id")
    return int(qid) if isinstance(qid, int) else 0
