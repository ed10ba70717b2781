"""The batched solver: many questions in lockstep (paper §4.3, "batched inference").

Questions are sorted by segment count and taken in batches.  Within a batch, step *k*
gives every question that still has a *k*-th segment one inference call, all in one
batched model call; then one batched final call answers the whole batch (on the
assist model when one is given).  There is no clock here: in a batch the slowest
question sets the pace, so the paper uses the final response's completion tokens as the
latency proxy.  Each record's ``timestamp`` holds the typing delay of every segment (the
characters the v1 user types: whitespace between sentences is not typed) and then of the
options (a newline after every option), and ``action`` the kept actions, as in the v1
batched files.

Without LiveMind the batch gets one CoT call per question, in one batched call (the
original batched script ran the LiveMind solver in both cases; fixed here).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterator, Sequence

from .clock import PAPER_SECONDS_PER_CHAR
from .data import category_rank, format_options, typed_options
from .methods.cot import CoTController
from .methods.livemind import LiveMindController
from .models.base import ChatModel, ChatRequest, ModelError
from .records import build_record, error_record
from .solver import TimingConfig, question_timeline

log = logging.getLogger(__name__)

Controller = LiveMindController | CoTController


def order_by_length(rows: Sequence[dict[str, Any]], segmenter: Callable[[str], list[str]]) -> list[dict[str, Any]]:
    """Rows sorted by segment count, then by the paper's fixed category order (stable:
    inside one category, equal counts keep their selection order)."""
    return sorted(rows, key=lambda row: (len(segmenter(row.get("question") or "")), category_rank(row.get("category", ""))))


def batches(rows: Sequence[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    if size <= 0:
        raise ValueError("batch size must be > 0")
    for start in range(0, len(rows), size):
        yield list(rows[start:start + size])


def _run_batch_call(model: ChatModel, members: list[tuple[Controller, ChatRequest, int, bool]]) -> None:
    """One batched model call for (controller, request, visible segments, complete) members."""
    completions = model.complete([m[1] for m in members])
    for (controller, request, visible, complete), completion in zip(members, completions):
        controller.accept(request, completion, visible, complete)


def solve_batch(
    make_controller: Callable[[], Controller],
    rows: Sequence[dict[str, Any]],
    typing_speed: float = PAPER_SECONDS_PER_CHAR,
    extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Solve one batch in lockstep and return its records (input order).

    If a batched call fails, the batch is retried one question at a time so only the
    questions that really fail get an error record.
    """
    if len(rows) > 1:
        try:
            return _solve_lockstep(make_controller, rows, typing_speed, extra)
        except ModelError as exc:
            log.warning("batched call failed (%s); retrying the batch one question at a time", exc)
            return [r for row in rows for r in solve_batch(make_controller, [row], typing_speed, extra)]
    return _solve_lockstep(make_controller, rows, typing_speed, extra, record_failure=True)


def _solve_lockstep(make_controller: Callable[[], Controller], rows: Sequence[dict[str, Any]], typing_speed: float,
                    extra: dict[str, Any] | None, record_failure: bool = False) -> list[dict[str, Any]]:
    """The lockstep batch; a ``ModelError`` propagates, or with ``record_failure`` (one
    question) becomes that question's error record."""
    states = []
    for row in rows:
        controller = make_controller()
        controller.reset(cache_key=str(row.get("question_id")))
        question = row.get("question") or ""
        segments = controller.segmenter(question) if question.strip() else []
        states.append((row, controller, segments, format_options(row["options"])))
    live = [s for s in states if s[2]]
    try:
        if live and live[0][1].mode == "livemind":
            for k in range(1, max(len(s[2]) for s in live) + 1):
                members = [(c, c.request(segs[:k], False), k, False) for _, c, segs, _ in live if len(segs) >= k]
                _run_batch_call(live[0][1].model_for(False), members)
        if live:
            members = [(c, c.request(segs, True, opts, len(row["options"])), len(segs), True) for row, c, segs, opts in live]
            _run_batch_call(live[0][1].model_for(True), members)
    except ModelError as exc:
        if not record_failure:
            raise
        row, controller = states[0][0], states[0][1]
        return [error_record(row, controller.mode, f"{type(exc).__name__}: {exc}", extra)]
    records = []
    for row, controller, segments, options_text in states:
        if not segments:
            records.append(error_record(row, controller.mode, "empty question", extra))
            continue
        _, _, delays = question_timeline(row["question"], typed_options(row["options"]), segments,
                                         TimingConfig(typing_speed=typing_speed))
        fields = {"timestamp": delays, "action": [s.action.render() for s in controller.steps
                                                   if s.action is not None and not s.action.is_wait]}
        records.append(build_record(row, controller.steps, controller.mode, extra={**fields, **(extra or {})}))
    return records
