"""Re-model a finished run's latency under a token-cost profile (paper §4.1 latency).

A record's steps keep each call's tokens and the arrival time of the input it saw, so its
timeline can be replayed with every call charged by a ``CostProfile`` instead of the
time it was charged when the run was made:

* an inference call starts at ``max(model free, arrival)``; a call the run cut at the
  complete input (``cancel_on_complete``) ends there at the latest;
* the final call starts at ``max(model free, options arrival)``;
* latency = end of the final call - options arrival (the baseline: its one call's time).

Under the paper's v1 protocol (``every``, no cancellation) which calls are made does not
depend on their durations, so the replay is exactly the run ``--timing PROFILE`` would
give.  Under ``cancel_on_complete`` or ``latest`` the replay applies the schedule's rules
itself: a call that would start once the input is complete is dropped (the real run
would not make it), one running at completion is cut there.  It is exact when these
rules make, cut and merge exactly the calls the run did -- then every later prompt is
the one the run sent; otherwise (a call kept by the run is now cut or dropped, a call
the run never made would now start, segments would merge differently, prefills would
move) the profile's run would have sent other prompts, and ``replay`` says so with a
reason (``Replay.exact``).  The schedule is read from the record (a cancelled step means
``cancel_on_complete``; an inference step that skips segments means ``latest``) unless
the caller passes the run's configuration.

Records of the other methods (PredGen, continuous thinking: ``methods/``) are not replayed
call by call: their typing-stage calls were capped and cut at segment arrivals under the
run's own timing, so under another profile other calls would have been made.  Their
answering call is re-charged and the model's wait at the complete input kept, marked
approximate.

The authors' v1 files keep no per-step times: their modelled latency is the measured
``overhead_time`` plus the modelled final call (exact when the overhead is 0, as in all
1,400 records of the published 70B LiveMind run).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Iterable

from ..profiles import CostProfile
from ..schedule import next_visible, stops_at_complete

Record = dict[str, Any]
PAPER_MODES = ("livemind", "cot")
"""The records whose timeline this module replays call by call (the paper's schedules)."""


@dataclass(frozen=True)
class Replay:
    """A record's latency under a profile, and whether the replay is exact."""

    latency: float
    exact: bool = True
    reason: str = ""


def modelled_latency(record: Record, profile: CostProfile) -> float | None:
    """The record's latency with every call charged by ``profile`` (``None``: no usable
    calls, e.g. a failed question)."""
    result = replay(record, profile)
    return None if result is None else result.latency


def replay(record: Record, profile: CostProfile, cancel_on_complete: bool | None = None,
           schedule: str | None = None, answer_profile: CostProfile | None = None) -> Replay | None:
    """``modelled_latency`` with its exactness (see the module docstring).  ``answer_profile``
    charges the answering model's calls (final, prefill) when it has its own profile
    (collaborative inference under ``--timing model``); default: ``profile``."""
    answer_profile = answer_profile or profile
    if record.get("error"):
        return None
    steps = record.get("steps")
    mode = record.get("mode") or "livemind"
    if mode not in PAPER_MODES and isinstance(steps, list) and steps and steps[-1].get("kind") == "final":
        # Another method's typing stage was capped and cut at segment arrivals under the run's own
        # timing: only its answering call is re-charged; the wait for the model at the complete
        # input is kept as the run timed it.
        busy = float((record.get("time_info") or {}).get("overhead_time") or 0.0)
        return Replay(busy + _cost(steps[-1], answer_profile), False,
                      f"{mode} run: the answering call re-charged, the typing stage as the run timed it")
    if isinstance(steps, list) and steps and all("arrival" in s for s in steps):
        return _replay(steps, profile, cancel_on_complete, schedule, answer_profile)
    usage, info = record.get("usage") or {}, record.get("time_info") or {}
    prompts, completions = usage.get("prompt_tokens") or [], usage.get("completion_tokens") or []
    if not prompts or not completions:
        return None
    cached = usage.get("cached_tokens") or []
    final = answer_profile.seconds(prompts[-1], cached[-1] if len(cached) == len(prompts) else 0, completions[-1])
    overhead = float(info.get("overhead_time") or 0.0)
    return Replay(overhead + final, overhead == 0, "" if overhead == 0 else "v1 record: the measured overhead is kept")


def _was_cut(step: dict[str, Any]) -> bool:
    return bool(step.get("cancelled")) or step.get("action") == "cancelled"


def _replay(steps: list[dict[str, Any]], profile: CostProfile, cancel: bool | None, schedule: str | None,
            answer_profile: CostProfile) -> Replay | None:
    final = steps[-1]
    if final.get("kind") != "final":
        return None
    inference = [s for s in steps[:-1] if s.get("kind") != "prefill"]
    if cancel is None:
        cancel = any(_was_cut(s) for s in inference)
    latest = schedule == "latest" if schedule is not None else any(
        b["segments"] - a["segments"] > 1 for a, b in zip([{"segments": 0}, *inference], inference))
    stops = stops_at_complete("latest" if latest else "every", cancel)
    complete_at, free, why = float(final["arrival"]), 0.0, []
    consumed = 0
    for k, step in enumerate(steps[:-1]):
        start = max(free, float(step["arrival"]))
        prefill = step.get("kind") == "prefill"
        # the schedule's rule (schedule.py) on the recorded call: at its replayed start,
        # would the run still make it?  A prefill is never made once the input is complete.
        made = next_visible("latest" if latest else "every", cancel, consumed, int(step["segments"]),
                            start >= complete_at) if not prefill else (None if start >= complete_at else 1)
        if not made:
            why.append(f"call {k + 1} would start after the input completed and is dropped")
            continue
        if not prefill:
            consumed = int(step["segments"])
        end = start + _cost(step, answer_profile if prefill else profile)
        cut = cancel and not prefill and start < complete_at < end
        if cut != _was_cut(step):
            why.append(f"call {k + 1} would {'' if cut else 'not '}be cut at the complete input")
        if prefill and (abs(start - float(step.get("start", start))) > 1e-9 or abs(end - float(step.get("end", end))) > 1e-9):
            why.append(f"prefill {k + 1} would run at another time")
        if latest and not prefill:
            later = [s for s in inference if s["segments"] > step["segments"]]
            if later and (start >= float(later[0]["arrival"]) or (start > float(step.get("start", start)) + 1e-9
                                                                   and later[0]["segments"] > step["segments"] + 1)):
                why.append(f"call {k + 1} would see other segments")
        free = min(end, complete_at) if cut else end
    unmade = final["segments"] > (inference[-1]["segments"] if inference else 0)
    if stops and unmade and free < complete_at:
        why.append("a call the run never made would start before the input completed")
    end = max(free, complete_at) + _cost(final, answer_profile)
    return Replay(end - complete_at, not why, "; ".join(why))


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
    """Rows ``[timing, base mean, LiveMind mean, ratio LiveMind/base, reduction %,
    approximate replays]``: first the measured latencies as the runs report them, then each
    profile's re-modelled ones with how many questions of each run (base / LiveMind) the
    replay could only approximate."""
    base, live = list(base), list(live)
    rows = []
    for name, (b, lm) in [("measured (as run)", measured),
                         *[(p.name, (mean_modelled_latency(base, p), mean_modelled_latency(live, p))) for p in profiles]]:
        ratio = lm / b if b and lm is not None else None
        rows.append([name, b, lm, ratio, 100 * (1 - ratio) if ratio is not None else None])
    for row, profile in zip(rows[1:], profiles):
        row.append(" / ".join(approximate_count(run, profile) for run in (base, live)))
    if rows:
        rows[0].append("")
    return rows


def approximate_count(records: Iterable[Record], profile: CostProfile) -> str:
    """``"approximate/replayed"`` questions of one run under ``profile``."""
    replays = [r for r in (replay(record, profile) for record in records) if r is not None]
    return f"{sum(not r.exact for r in replays)}/{len(replays)}"
