"""Methods side by side on the same questions and clock (``benchmarks/methods.py``).

One row per method's run, from its records alone:

* latency after the complete input -- mean, p50 and p95 of ``time_info.latency`` as the
  run charged it (compare runs made under a cost profile, ``--timing``, not wall time);
* accuracy with its 95 % Wilson interval (failed questions count as wrong);
* generated tokens per question -- every call's completion tokens, the compute paid for
  the latency -- and the final answer's alone; model calls per question;
* how a method's final answers came about when it says so (PredGen's ``reused`` /
  ``drafted`` / ``afresh``).

``latency_accuracy_figure`` draws one point per method (latency on x, accuracy with its
interval on y), as SimulEval draws quality against latency.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from .effect import percentile, wilson
from .figures import _figure, _save
from .tables import Table

Record = dict[str, Any]
HEADER = ["method", "questions", "correct", "accuracy %", "95% CI low", "95% CI high", "latency mean s", "p50 s", "p95 s",
          "generated tok/q", "final tok/q", "calls/q", "final answers"]


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def method_row(name: str, records: Sequence[Record]) -> list[Any]:
    """The comparison row of one method's records (see the module docstring)."""
    n = len(records)
    correct = sum(bool(r.get("correct")) for r in records)
    low, high = wilson(correct, n)
    done = [r for r in records if not r.get("error") and r.get("time_info")]
    latencies = [float(r["time_info"]["latency"]) for r in done]
    generated = [sum(r["usage"]["completion_tokens"]) for r in done]
    final = [r["usage"]["completion_tokens"][-1] for r in done if r["usage"]["completion_tokens"]]
    calls = [len(r.get("steps") or []) for r in done]
    notes = Counter(r["steps"][-1].get("note") for r in done if r.get("steps") and r["steps"][-1].get("note"))
    return [name, n, correct, 100.0 * correct / n if n else None, low, high, _mean(latencies), percentile(latencies, 50),
            percentile(latencies, 95), _mean(generated), _mean(final), _mean(calls),
            ", ".join(f"{k} {v}" for k, v in sorted(notes.items())) or "-"]


def methods_table(runs: Sequence[tuple[str, Sequence[Record]]]) -> Table:
    """One row per ``(method, records)``; every method must have run the same questions."""
    ids = [sorted(str(r.get("question_id")) for r in records) for _, records in runs]
    if any(i != ids[0] for i in ids[1:]):
        raise ValueError("the methods did not run the same questions")
    return Table(list(HEADER), [method_row(name, records) for name, records in runs])


def latency_accuracy_figure(table: Table, path: str | Path, res_dir: str | Path | None = None) -> list[Path]:
    """Accuracy (with its 95 % interval) against mean latency, one point per method."""
    fig = _figure(figsize=(5.5, 4))
    ax = fig.subplots()
    col = {h: i for i, h in enumerate(table.header)}
    for row in table.rows:
        x, y = row[col["latency mean s"]], row[col["accuracy %"]]
        if x is None or y is None:
            continue
        err = [[y - row[col["95% CI low"]]], [row[col["95% CI high"]] - y]]
        ax.errorbar([x], [y], yerr=err, fmt="o", capsize=4, label=row[col["method"]])
        ax.annotate(row[col["method"]], (x, y), textcoords="offset points", xytext=(6, 4))
    ax.set_xlabel("mean latency after the complete input (s)")
    ax.set_ylabel("accuracy (%), 95 % Wilson interval")
    ax.set_title(f"methods on the same {table.rows[0][col['questions']] if table.rows else 0} questions")
    ax.grid(alpha=0.3)
    return _save(fig, Path(path), res_dir, "methods")
