"""Prompt-token bookkeeping of run files: how much each run had to prefill.

For every ``all.json`` given (our solvers' records, with per-call ``usage`` including
``cached_tokens``) it prints the number of model calls, prompt tokens in all, the part
served from a KV cache, the part prefilled (prompt - cached), the final step's cached
share (sum over questions of cached / prompt tokens of the final call) and, against the
first file, how many predictions agree.  For runs under a timing profile ``cached`` is the
modelled per-question cache (``live_mind/cachemodel.py``) and the engine's own count
(``engine_cached_tokens``) is shown beside it ("-" for runs without one).  Token counts, not seconds: they do not depend on
how busy the machine was.

Usage: ``python benchmarks/prefill_report.py PLAIN.json SESSIONS.json [...]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live_mind import flags  # noqa: E402


def summarize(path: Path) -> dict:
    records = json.loads(path.read_text())
    prompt = cached = calls = final_prompt = final_cached = 0
    engine: int | None = None
    for record in records:
        usage = record.get("usage") or {}
        p, c = usage.get("prompt_tokens", []), usage.get("cached_tokens") or [0] * len(usage.get("prompt_tokens", []))
        if "engine_cached_tokens" in usage:
            engine = (engine or 0) + sum(usage["engine_cached_tokens"])
        calls += len(p)
        prompt += sum(p)
        cached += sum(c)
        if p:
            final_prompt += p[-1]
            final_cached += c[-1]
    return {
        "file": str(path), "questions": len(records), "calls": calls, "prompt_tokens": prompt,
        "cached_tokens": cached, "engine_cached_tokens": engine, "prefilled_tokens": prompt - cached,
        "final_cached_share": final_cached / final_prompt if final_prompt else 0.0,
        "preds": {r.get("question_id"): r.get("pred") for r in records},
    }


def main(argv: list[str] | None = None) -> int:
    parser = flags.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    rows = [summarize(path) for path in args.files]
    print("| file | questions | calls | prompt tok | cached tok | engine-reported cached tok | prefilled tok "
          "| final-step cached share | preds agree |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    first = rows[0]["preds"]
    for row in rows:
        agree = sum(1 for q, p in row["preds"].items() if q in first and first[q] == p)
        engine = "-" if row["engine_cached_tokens"] is None else f"{row['engine_cached_tokens']:,}"
        print(f"| {row['file']} | {row['questions']} | {row['calls']} | {row['prompt_tokens']:,} | {row['cached_tokens']:,} | {engine} "
              f"| {row['prefilled_tokens']:,} | {row['final_cached_share']:.2f} | {agree}/{len(first)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
