"""Several questions in flight at once, each on its own simulated timeline (paper §4.1).

The real-time protocol is a chain of dependent calls per question, so one question keeps
a batching engine mostly idle.  ``solve_concurrently`` keeps up to ``n`` questions in
flight: each is a ``solver.question_calls`` generator with its own controller and its own
``SimulatedClock``; every round, the pending call of each question is gathered and the
calls for one model go to the backend together, as one ``complete`` batch (one batched
engine call for vLLM, concurrent requests for the OpenAI-compatible backend).

Only a token-cost profile makes this sound: a shared engine's wall time says nothing
about one question's call, so the scripts refuse ``--concurrency`` under measured timing.
Under a profile each call is charged from its own tokens, so a question's record is the
one a sequential run gives, whenever the backend answers a request in a batch as it
would alone.  If a batched call fails, its requests are retried one by one so the error
lands on the question that caused it.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable, Iterable, Sequence

from .models.base import ChatModel, ChatRequest, Completion, ModelError
from .solver import QuestionCalls, TimingConfig, question_calls

log = logging.getLogger(__name__)

Record = dict[str, Any]


def solve_concurrently(
    make_controller: Callable[[], Any],
    rows: Iterable[dict[str, Any]],
    timing: TimingConfig,
    n: int,
    extra: dict[str, Any] | None = None,
    on_record: Callable[[Record], bool | None] | None = None,
) -> list[Record]:
    """Solve ``rows`` with up to ``n`` in flight; records are returned (and passed to
    ``on_record`` as each question finishes; returning ``True`` there stops taking new
    questions) in the order the questions finish."""
    if n < 1:
        raise ValueError("concurrency must be >= 1")
    todo = deque(rows)
    free = [make_controller() for _ in range(min(n, len(todo)) or 1)]
    active: list[tuple[QuestionCalls, Any, tuple[ChatModel, ChatRequest]]] = []
    done: list[Record] = []
    stopping = False

    def finish(record: Record, controller: Any) -> None:
        nonlocal stopping
        done.append(record)
        free.append(controller)
        if on_record is not None and on_record(record):
            stopping = True

    while todo or active:
        while todo and free and not stopping:
            controller = free.pop()
            calls = question_calls(controller, todo.popleft(), timing, extra)
            try:
                active.append((calls, controller, next(calls)))
            except StopIteration as stop:
                finish(stop.value, controller)
        if not active:
            if stopping:
                break
            continue
        results = _run_round([pending for _, _, pending in active])
        still: list[tuple[QuestionCalls, Any, tuple[ChatModel, ChatRequest]]] = []
        for (calls, controller, _), result in zip(active, results):
            try:
                pending = calls.throw(result) if isinstance(result, ModelError) else calls.send(result)
            except StopIteration as stop:
                finish(stop.value, controller)
            else:
                still.append((calls, controller, pending))
        active = still
    return done


def _run_round(pending: Sequence[tuple[ChatModel, ChatRequest]]) -> list[Completion | ModelError]:
    """One batched ``complete`` per distinct model; a failed batch is retried per request."""
    results: list[Completion | ModelError | None] = [None] * len(pending)
    groups: dict[int, list[int]] = {}
    for i, (model, _) in enumerate(pending):
        groups.setdefault(id(model), []).append(i)
    for indices in groups.values():
        model = pending[indices[0]][0]
        try:
            completions = model.complete([pending[i][1] for i in indices])
        except ModelError as exc:
            if len(indices) == 1:
                results[indices[0]] = exc
                continue
            log.info("batched call failed (%s); retrying its %d requests one by one", exc, len(indices))
            for i in indices:
                try:
                    results[i] = model.complete([pending[i][1]])[0]
                except ModelError as single:
                    results[i] = single
            continue
        for i, completion in zip(indices, completions):
            results[i] = completion
    return results  # type: ignore[return-value]
