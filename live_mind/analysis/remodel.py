"""Re-model a finished run's latency under a token-cost profile (paper §4.1 latency).

A record's steps keep each call's tokens and the arrival time of the input it saw, so its
timeline can be replayed with every call charged by a ``CostProfile`` instead of the
time it was charged when the run was made:

* an inference call starts at ``max(model free, arrival)``; a call the run cut at the
  complete input (``cancel_on_complete``) ends there at the latest;
* the final call starts at ``max(model free, options arrival)``;
* latency = end of the final call - options arrival (the baseline: its one call's time).

The replay keeps the calls the run made.  Under the paper's v1 protocol (``every``, no
cancellation) which calls are made does not depend on their durations, so the replay is
exactly the run ``--timing PROFILE`` would give; under ``latest`` or cancellation a
different profile could have merged or cut other calls, so it is an approximation there.

The authors' v1 files keep no per-step times: their modelled latency is the measured
``overhead_time`` plus the modelled final call (exact when the overhead is 0, as in all
1,400 records of the published 70B LiveMind run).
"""

from __future__ import annotations

import statistics
from typing import Any, Iterable

from ..profiles import CostProfile

Record = dict[str, Any]


def modelled_latency(record: Record, profile: CostProfile) -> float | None:
    """The record's latency with every call charged by ``profile`` (``None``: no usable
    calls, e.g. a failed question)."""
    if record.get("error"):
        return None
    steps = record.get("steps")
    if isinstance(steps, list) and steps and all("arrival" in s for s in steps):
        return _replay(steps, profile)
    usage, info = record.get("usage") or {}, record.get("time_info") or {}
    prompts, completions = usage.get("prompt_tokens") or [], usage.get("completion_tokens") or []
    if not prompts or not completions:
        return None
    cached = usage.get("cached_tokens") or []
    final = profile.seconds(prompts[-1], cached[-1] if len(cached) == len(prompts) else 0, completions[-1])
    return float(info.get("overhead_time") or 0.0) + final


def _replay(steps: list[dict[str, Any]], profile: CostProfile) -> float | None:
    final = steps[-1]
    if final.get("kind") != "final":
        return None
    complete_at = float(final["arrival"])
    free = 0.0
    for step in steps[:-1]:
        start = max(free, float(step["arrival"]))
        end = start + _cost(step, profile)
        if step.get("action") == "cancelled" and start < complete_at:
            end = min(end, complete_at)
        free = end
    end = max(free, complete_at) + _cost(final, profile)
    return end - complete_at


def _cost(step: dict[str, Any], profile: CostProfile) -> float:
    return profile.seconds(int(step["prompt_tokens"]), int(step.get("cached_tokens") or 0), int(step["completion_tokens"]))


def mean_modelled_latency(records: Iterable[Record], profile: CostProfile) -> float | None:
    """Mean modelled latency over the records that have one."""
    values = [v for r in records if (v := modelled_latency(r, profile)) is not None]
    return statistics.fmean(values) if values else None


def default_profiles(user_file: Any = None) -> list[CostProfile]:
    """The profiles compare_runs reports by default: every packaged (and user) profile."""
    from ..profiles import load_profiles

    return [p for _, p in sorted(load_profiles(user_file).items())]


def modelled_rows(base: Iterable[Record], live: Iterable[Record], profiles: Iterable[CostProfile],
                  measured: tuple[float | None, float | None]) -> list[list[Any]]:
    """Rows ``[timing, base mean, LiveMind mean, ratio LiveMind/base, reduction %]``: first
    the measured latencies as the runs report them, then each profile's re-modelled ones."""
    base, live = list(base), list(live)
    rows = []
    for name, (b, lm) in [("measured (as run)", measured),
                         *[(p.name, (mean_modelled_latency(base, p), mean_modelled_latency(live, p))) for p in profiles]]:
        ratio = lm / b if b and lm is not None else None
        rows.append([name, b, lm, ratio, 100 * (1 - ratio) if ratio is not None else None])
    return rows
