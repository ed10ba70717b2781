"""Action shares per step and per length from solver output files (the paper's Fig. 8).

Actions (Fig. 8): a record's inference-call actions come from its ``steps``; calls
cut short when the options arrived (action ``cancelled``) produced no action and are
left out of the shares, so step k is the k-th call that finished.  Files in
the original v1 batched layout only keep the non-wait actions (``action``: list of
``"action NAME. content"``) and the number of inference calls is
``len(usage["completion_tokens"]) - 1``; the rest were waits.  Where those waits
happened is read with the v1 analysis rule: an inference call whose completion tokens
equal 4 (``action wait.`` in the Llama-3 tokenizer) was a wait, the others produced
the kept actions in order.  The rule is applied only when the counts add up (calls
that are not 4 tokens = kept actions); otherwise, or with ``wait_tokens=None``, such
records count in the per-length table only and are left out of the per-step table.
``assume_kept_last=True`` then places the waits first and the kept actions at the last
steps (an assumption, not a measurement).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from .tables import ACTION_TYPES, AnalysisError, Record, Run, Table, check_agreement, final_tokens, groups

_KEPT_ACTION = re.compile(r"\s*action\s+([A-Za-z]+)", re.IGNORECASE)

@dataclass(frozen=True)
class ActionSequence:
    """A record's inference-call actions; ``positioned`` is False when only counts are known."""

    types: tuple[str, ...]
    positioned: bool
    cancelled: int = 0  # inference calls cut short (no action; left out of the shares)
    wait_rule: bool = False  # positions read with the v1 token-count wait rule


def _kept_type(text: Any) -> str:
    match = _KEPT_ACTION.match(text) if isinstance(text, str) else None
    name = match.group(1).lower() if match else ""
    return name if name in ACTION_TYPES else "unparsed"


def _step_type(step: Record) -> str:
    """A step's action type; a name outside the action set that the v1 real-time rule
    kept (strict match, e.g. ``wai`` from ``action wait``) counts as ``unparsed``: it
    is none of the paper's actions."""
    name = step.get("action") or "unparsed"
    return "unparsed" if name not in ACTION_TYPES and name != "cancelled" and step.get("parse_rule") == "strict" else name


V1_WAIT_TOKENS = 4  # completion tokens of a wait reply under the v1 analysis rule


def record_actions(record: Record, assume_kept_last: bool = False,
                   wait_tokens: int | None = V1_WAIT_TOKENS) -> ActionSequence | None:
    """Actions from ``steps``, else inferred from the v1 kept-action list (positioned by
    the ``wait_tokens`` rule when its counts add up); None if neither."""
    steps = record.get("steps")
    if isinstance(steps, list):
        calls = [_step_type(s) for s in steps if isinstance(s, dict) and s.get("kind") == "inference"]
        types = tuple(t for t in calls if t != "cancelled")
        unknown = [t for t in types if t not in ACTION_TYPES]
        if unknown:
            raise AnalysisError(f"question {record.get('question_id')}: unknown action {unknown[0]!r} in steps")
        return ActionSequence(types, True, len(calls) - len(types))
    kept, final = record.get("action"), final_tokens(record)
    if not isinstance(kept, list) or final is None:
        return None
    calls = len(record["usage"]["completion_tokens"]) - 1
    if len(kept) > calls:
        raise AnalysisError(f"question {record.get('question_id')}: {len(kept)} kept actions "
                            f"but only {calls} inference calls in usage")
    kept_types = [_kept_type(k) for k in kept]
    call_tokens = record["usage"]["completion_tokens"][:-1]
    is_wait = [t == wait_tokens for t in call_tokens]
    if wait_tokens is not None and calls - sum(is_wait) == len(kept):
        order = iter(kept_types)
        return ActionSequence(tuple("wait" if w else next(order) for w in is_wait), True, wait_rule=True)
    waits = ("wait",) * (calls - len(kept))
    return ActionSequence(waits + tuple(kept_types), assume_kept_last)


def _share_cells(counts: Counter) -> list[Any]:
    calls = sum(counts.values())
    return [calls] + [100 * counts[t] / calls if calls else None for t in ACTION_TYPES]


def _metric_major(per_run: list[list[Any]]) -> list[Any]:
    """Cells of several files, metric by metric (file 1, file 2, ...) as in v1."""
    return [cells[j] for j in range(len(per_run[0])) for cells in per_run]


@dataclass
class ActionTables:
    per_step: Table
    per_len: Table
    unpositioned: list[int]  # per run: records left out of the per-step table
    missing: list[int]       # per run: records without any action information
    cancelled: list[int]     # per run: inference calls cut short, left out of all shares
    wait_rule: list[int]     # per run: kept-action records positioned by the v1 wait rule


def action_tables(runs: Sequence[Run], assume_kept_last: bool = False,
                  wait_tokens: int | None = V1_WAIT_TOKENS) -> ActionTables:
    """Share (percent) of each action type per step (1..) and per question length."""
    check_agreement(runs)
    columns = [f"File {i} {name}" for name in ("Calls", *(t.capitalize() for t in ACTION_TYPES))
               for i in range(1, len(runs) + 1)]
    step_counts: list[dict[Any, Counter]] = []
    len_counts: list[dict[Any, Counter]] = []
    unpositioned, missing, cancelled, wait_rule = [], [], [], []
    for run in runs:
        try:
            sequences = [record_actions(r, assume_kept_last, wait_tokens) for r in run.records]
        except AnalysisError as exc:
            raise AnalysisError(f"{run.path}: {exc}") from None
        if all(s is None for s in sequences):
            raise AnalysisError(f"{run.path}: no action information (neither 'steps' nor 'action' fields)")
        by_step: dict[Any, Counter] = {"All": Counter()}
        by_len: dict[Any, Counter] = {"All": Counter()}
        for length in groups(run, "length"):
            by_len[length] = Counter()
        for seq, length in zip(sequences, run.lengths):
            if seq is None:
                continue
            by_len["All"].update(seq.types)
            by_len[length].update(seq.types)
            if seq.positioned:
                by_step["All"].update(seq.types)
                for step, kind in enumerate(seq.types, 1):
                    by_step.setdefault(step, Counter())[kind] += 1
        step_counts.append(by_step)
        len_counts.append(by_len)
        unpositioned.append(sum(1 for s in sequences if s is not None and not s.positioned))
        missing.append(sum(1 for s in sequences if s is None))
        cancelled.append(sum(s.cancelled for s in sequences if s is not None))
        wait_rule.append(sum(1 for s in sequences if s is not None and s.wait_rule))
    last_step = max((k for c in step_counts for k in c if k != "All"), default=0)
    step_rows = [[key] + _metric_major([_share_cells(c.get(key, Counter())) for c in step_counts])
                 for key in ["All", *range(1, last_step + 1)]]
    totals = {"All": len(runs[0].records), **{k: len(v) for k, v in groups(runs[0], "length").items()}}
    len_rows = [[key, totals[key]] + _metric_major([_share_cells(c[key]) for c in len_counts])
                for key in len_counts[0]]
    return ActionTables(Table(["Step", *columns], step_rows), Table(["Length", "Total", *columns], len_rows),
                        unpositioned, missing, cancelled, wait_rule)
