"""Several questions in flight at once, each on its own simulated timeline (paper §4.1).

The real-time protocol is a chain of dependent calls per question, so one question keeps
a batching engine mostly idle.  ``solve_concurrently`` keeps up to ``n`` questions in
flight with continuous scheduling: each question is a ``solver.question_calls``
generator with its own controller and its own ``SimulatedClock``; it sends its next call
(``models.aio.acomplete``) the moment its previous call returns, a new question starts
the moment one finishes, and calls for different models (inference and assist model)
run at the same time.  Nothing waits for a round: an engine that batches in-flight
requests itself (vLLM's ``AsyncLLM``, an OpenAI-compatible server) always holds every
pending call, and a backend without one gets the per-model ``Serializer`` of
``models/aio.py`` (built with ``batch_decode``, it batches the waiting requests: ``cli.load_models``).

Only a token-cost profile makes this sound: a shared engine's wall time says nothing
about one question's call, so the scripts refuse ``--concurrency`` under measured timing.
Under a profile each call is charged from its own tokens and its *modelled* cache
(``cachemodel.py``: what the question's own earlier calls left), so a question's record
is the one a sequential run gives whenever the backend answers a request in company as
it would alone.  A failed call raises its ``ModelError`` into its own question only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable, Iterable

from .models.aio import acomplete
from .models.base import ModelError
from .solver import TimingConfig, advance, question_calls

Record = dict[str, Any]


async def solve_question_async(controller: Any, row: dict[str, Any], timing: TimingConfig,
                               extra: dict[str, Any] | None = None) -> Record:
    """One question through its generator, each call awaited on the async path."""
    calls = question_calls(controller, row, timing, extra)
    step = advance(calls)
    while isinstance(step, tuple):
        try:
            outcome = await acomplete(*step)
        except ModelError as exc:
            outcome = exc
        step = advance(calls, outcome)
    return step


async def solve_async(
    make_controller: Callable[[], Any],
    rows: Iterable[dict[str, Any]],
    timing: TimingConfig,
    n: int,
    extra: dict[str, Any] | None = None,
    on_record: Callable[[Record], bool | None] | None = None,
) -> list[Record]:
    """``solve_concurrently`` inside a running event loop (e.g. a web service's)."""
    if n < 1:
        raise ValueError("concurrency must be >= 1")
    todo = deque(rows)
    done: list[Record] = []
    stopping = False

    async def lane() -> None:
        nonlocal stopping
        controller = make_controller()
        while todo and not stopping:
            record = await solve_question_async(controller, todo.popleft(), timing, extra)
            done.append(record)
            if on_record is not None and on_record(record):
                stopping = True

    lanes = [asyncio.ensure_future(lane()) for _ in range(min(n, len(todo)) or 1)]
    try:
        await asyncio.gather(*lanes)
    finally:
        for task in lanes:  # an infrastructure failure in one lane stops the others
            task.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
    return done


def solve_concurrently(*args: Any, **kwargs: Any) -> list[Record]:
    """``solve_async(make_controller, rows, timing, n, extra, on_record)`` run to its end:
    solve ``rows`` with up to ``n`` in flight; records are returned (and passed to
    ``on_record`` as each question finishes; returning ``True`` there stops taking new
    questions, the ones in flight finish) in the order the questions finish."""
    return asyncio.run(solve_async(*args, **kwargs))
