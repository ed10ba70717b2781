"""The summary a solver prints at the end of a run: accuracy per category, how many
inference replies parsed (paper §4.2's format-following), mean latency and how it was
charged, cached prompt tokens (modelled beside engine-reported) and failed questions."""

from __future__ import annotations

from typing import Any

from .profiles import MEASURED


def summarize(records: list[dict[str, Any]], timing: str | None = None) -> str:
    """Per-category and total accuracy, parse rates and failures, as printed at the end;
    ``timing`` names how latency was charged (``measured`` or a profile)."""
    lines = []
    cats: dict[str, list[bool]] = {}
    for r in records:
        cats.setdefault(r.get("category", "?"), []).append(bool(r.get("correct")))
    width = max([len(c) for c in cats] + [5])
    for cat, marks in cats.items():
        lines.append(f"  {cat:<{width}}  {sum(marks):>4}/{len(marks):<4} {100.0 * sum(marks) / len(marks):6.2f}%")
    total = [bool(r.get("correct")) for r in records]
    if total:
        lines.append(f"  {'total':<{width}}  {sum(total):>4}/{len(total):<4} {100.0 * sum(total) / len(total):6.2f}%")
    steps = [s for r in records for s in r.get("steps", []) if s.get("kind") == "inference" and s.get("parse_rule") != "cancelled"]
    if steps:
        parsed = sum(1 for s in steps if s.get("parse_rule") in ("strict", "lenient"))
        strict = sum(1 for s in steps if s.get("parse_rule") == "strict")
        lines.append(f"  inference responses parsed: {parsed}/{len(steps)} ({100.0 * parsed / len(steps):.1f}%; strict {strict}, lenient {parsed - strict})")
    latencies = [r["time_info"]["latency"] for r in records if r.get("time_info")]
    if latencies:
        how = "" if timing is None else (" (timing: measured wall time)" if timing == MEASURED else f" (timing: profile {timing})")
        lines.append(f"  mean latency: {sum(latencies) / len(latencies):.3f} s over {len(latencies)} questions{how}")
    cache_line = cached_tokens_line(records)
    if cache_line:
        lines.append(cache_line)
    failed = [r for r in records if r.get("error")]
    if failed:
        reasons: dict[str, int] = {}
        for r in failed:
            reasons[r["error"].split(":")[0]] = reasons.get(r["error"].split(":")[0], 0) + 1
        lines.append(f"  failed questions: {len(failed)} ({', '.join(f'{k}: {v}' for k, v in reasons.items())})")
    return "\n".join(lines)


def cached_tokens_line(records: list[dict[str, Any]]) -> str | None:
    """Prompt tokens served from a prefix cache: modelled per question (``cachemodel.py``)
    beside what the engine reported, for runs under a profile."""
    usages = [r["usage"] for r in records if "engine_cached_tokens" in (r.get("usage") or {})]
    if not usages:
        return None
    prompt = sum(sum(u["prompt_tokens"]) for u in usages)
    modelled, engine = (sum(sum(u[key]) for u in usages) for key in ("cached_tokens", "engine_cached_tokens"))
    return (f"  cached prompt tokens: modelled {modelled:,} (per question, charged), engine-reported {engine:,} "
            f"(diagnostic), of {prompt:,}")
