"""Output records (paper's v1 output files, extended).

A record is the MMLU-Pro row plus ``solution`` (the final response), ``usage`` (token
lists, one entry per model call, the final call last) and ``time_info`` exactly as the
authors' v1 files have them -- so their analysis and ours read both -- followed by this
toolkit's own fields: the prediction, correctness, every step with its simulated times
and how its action was parsed, the kept actions, and an ``error`` for failed questions.

The record schema (one JSON object per question; an output file is a list of them):

* MMLU-Pro fields, in this order: ``question_id``, ``question``, ``options`` (list of
  str), ``answer`` (letter), ``answer_index``, ``cot_content``, ``category``, ``src``.
* ``solution`` -- the final response text (empty for a failed question).
* ``usage`` -- ``completion_tokens``, ``prompt_tokens``, ``total_tokens`` and
  ``cached_tokens``: lists with one entry per model call, the final call last.  Under a
  timing profile ``cached_tokens`` is the modelled per-question cache (``cachemodel.py``)
  and ``engine_cached_tokens`` what the engine reported (a diagnostic).
* ``time_info`` -- the simulated-clock summary (``clock.TimeInfo.as_dict``: ``current_time``,
  ``latency``, ``total_gen_time``, ``overhead_time``); absent for batched runs.
* ``pred`` (letter or null), ``correct`` (bool), ``mode`` (``"livemind"``, ``"cot"``...);
  under ``--answer_rule extended`` also ``answer_rule`` (with the question's fields) and
  ``answer_read_by`` (``"paper"``, ``"boxed"``, ``"answer-label"``, ``"bold"`` or null).
* ``steps`` -- per call: ``kind`` (inference/final), ``segments`` seen, ``arrival``/
  ``start``/``end``/``cancelled`` when timed, ``seconds``, token counts, ``response``,
  ``action`` and ``parse_rule``.
* ``actions`` -- the kept (non-wait) actions: ``type``, ``content``, ``parse_rule``, ``step``.
* ``error`` -- null, or a one-line reason the question failed; callers may add fields
  (``config_id``, the live session's ``live``/``baseline``...).

The v1 files of the original authors have the MMLU-Pro fields, ``solution``, ``usage``
and ``time_info`` only; ``analysis/tables.py`` reads both.
"""

from __future__ import annotations

from typing import Any, Sequence

from .answer import read_answer
from .cachemodel import ENGINE_KEY as ENGINE_CACHED
from .clock import CallTime, TimeInfo
from .steps import StepResult
from .tasks.scoring import predict

MMLU_FIELDS = ("question_id", "question", "options", "answer", "answer_index", "cot_content", "category", "src")
TASK_FIELDS = ("task", "answer_kind", "answer_rule")  # only rows of a task other than MMLU-Pro, or read by a rule other than the paper's, have them


def base_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The MMLU-Pro fields of a question, in the original order, then the task's own."""
    return {key: row.get(key) for key in MMLU_FIELDS} | {key: row[key] for key in TASK_FIELDS if key in row}


def usage_lists(steps: Sequence[StepResult]) -> dict[str, list[int]]:
    """``usage`` as in the v1 files (+ ``cached_tokens``, and under a timing profile the
    engine's own count ``engine_cached_tokens`` beside the modelled one)."""
    usage = {
        "completion_tokens": [s.completion.completion_tokens for s in steps],
        "prompt_tokens": [s.completion.prompt_tokens for s in steps],
        "total_tokens": [s.completion.total_tokens for s in steps],
        "cached_tokens": [s.completion.cached_tokens for s in steps],
    }
    if steps and all(ENGINE_CACHED in s.completion.extra for s in steps):
        usage[ENGINE_CACHED] = [int(s.completion.extra[ENGINE_CACHED]) for s in steps]
    return usage


def step_entry(step: StepResult, timing: CallTime | None = None) -> dict[str, Any]:
    """One model call, for the ``steps`` list."""
    entry: dict[str, Any] = {"kind": step.kind, "segments": step.segments}
    if timing is not None:
        entry.update(arrival=timing.arrival, start=timing.start, end=timing.end, cancelled=timing.cancelled)
    entry.update(
        seconds=step.completion.seconds,
        prompt_tokens=step.completion.prompt_tokens,
        completion_tokens=step.completion.completion_tokens,
        cached_tokens=step.completion.cached_tokens,
        **({ENGINE_CACHED: step.completion.extra[ENGINE_CACHED]} if ENGINE_CACHED in step.completion.extra else {}),
        response=step.response,
        action=step.action_name,
        parse_rule=step.parse_rule,
    )
    if step.note is not None:  # a method's word on the call (e.g. PredGen's reuse); absent for LiveMind and CoT
        entry["note"] = step.note
    return entry


def kept_actions(steps: Sequence[StepResult]) -> list[dict[str, Any]]:
    """The non-wait parsed actions with the step index that produced them."""
    return [
        {"type": s.action.name, "content": s.action.content, "parse_rule": s.action.rule, "step": i}
        for i, s in enumerate(steps)
        if s.action is not None and not s.action.is_wait
    ]


def build_record(
    row: dict[str, Any],
    steps: Sequence[StepResult],
    mode: str,
    timings: Sequence[CallTime] | None = None,
    time_info: TimeInfo | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full output record of one solved question."""
    record = base_fields(row)
    solution = steps[-1].response if steps and steps[-1].kind == "final" else ""
    record["solution"] = solution
    record["usage"] = usage_lists(steps)
    if time_info is not None:
        record["time_info"] = time_info.as_dict()
    record["pred"], record["correct"] = predict(row, solution)
    if "answer_rule" in row:  # which pattern read the letter (answer.read_answer); absent under the paper's rule
        record["answer_read_by"] = read_answer(solution, row["answer_rule"])[1] if row.get("answer_kind") != "free" else None
    record["mode"] = mode
    timings = list(timings) if timings is not None else [None] * len(steps)
    record["steps"] = [step_entry(s, t) for s, t in zip(steps, timings)]
    record["actions"] = kept_actions(steps)
    record["error"] = None
    if extra:
        record.update(extra)
    return record


def error_record(row: dict[str, Any], mode: str, error: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A question that could not be solved: no prediction, counted as wrong."""
    record = base_fields(row)
    record.update(solution="", usage={"completion_tokens": [], "prompt_tokens": [], "total_tokens": [], "cached_tokens": []},
                  pred=None, correct=False, mode=mode, steps=[], actions=[], error=error)
    if extra:
        record.update(extra)
    return record
