"""The real-time driver: one question through the simulated typing timeline (paper §4.1).

``solve_question`` types the question (``timeline.QuestionInput``: segments, their
arrivals, the complete input) and drives a method (``methods/``: LiveMind, the CoT
baseline, PredGen...) over it: the method yields each ``(model, request)`` it needs, the
driver runs it and sends the completion back, and the method charges each call on the
clock -- measured, or modelled from its tokens by a cost profile (``profiles.py``).  The
model calls themselves run back to back; only the *simulated* timeline waits for typing.
The driver then builds the output record from the method's steps and call times.

``question_calls`` is the same procedure as a generator: it yields each
``(model, request)`` it needs and receives the completion, so a driver can keep several
questions in flight and send their pending calls to the backend together
(``concurrency.py``); ``solve_question`` drives it one call at a time.  A model failure
(context too long, backend error after retries) or an empty question yields an error
record and the run goes on.
"""

from __future__ import annotations

import logging
from typing import Any, Generator

from .cachemodel import with_modelled_cache
from .methods.base import Call, Method
from .models.base import Completion, ModelError
from .records import build_record, error_record
from .timeline import QuestionInput, TimingConfig, baseline_input_complete, question_timeline

__all__ = ["TimingConfig", "advance", "baseline_input_complete", "question_calls", "question_timeline", "solve_question"]

log = logging.getLogger(__name__)

QuestionCalls = Generator[Call, Completion, dict[str, Any]]


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


def solve_question(method: Method, row: dict[str, Any], timing: TimingConfig, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Solve one question in real-time mode with ``method``, one call after another."""
    calls = question_calls(method, row, timing, extra)
    step = advance(calls)
    while isinstance(step, tuple):
        model, request = step
        try:
            step = advance(calls, model.complete([request])[0])
        except ModelError as exc:
            step = advance(calls, exc)
    return step


def question_calls(method: Method, row: dict[str, Any], timing: TimingConfig, extra: dict[str, Any] | None = None) -> QuestionCalls:
    """``solve_question`` as a generator: yields ``(model, request)``, receives the
    ``Completion`` (a ``ModelError`` thrown in makes the error record), returns the record.
    Under a profile each completion's cached tokens are the question's modelled cache
    (``cachemodel.py``), so no other question in flight can change its timeline."""
    calls = _question_calls(method, row, timing, extra)
    return calls if timing.profile is None else with_modelled_cache(calls, timing.profile.cache_block)


def _question_calls(method: Method, row: dict[str, Any], timing: TimingConfig, extra: dict[str, Any] | None = None) -> QuestionCalls:
    mode = method.name
    question = row.get("question") or ""
    if not question.strip():
        return error_record(row, mode, "empty question", extra)
    q = QuestionInput.typed_by(row, method.segmenter(question), timing)
    method.reset(cache_key=str(row.get("question_id")))
    try:
        timings, info = yield from method.run(q)
    except ModelError as exc:
        log.warning("question %s failed: %s", row.get("question_id"), exc)
        return error_record(row, mode, f"{type(exc).__name__}: {exc}", extra)
    return build_record(row, method.steps, mode, timings, info, {**method.record_fields(), **(extra or {})})
