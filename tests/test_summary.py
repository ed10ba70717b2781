"""The end-of-run summary (live_mind/summary.py)."""

from __future__ import annotations

from live_mind.summary import summarize


def _record(category, correct, rules, latency, error=None):
    steps = [{"kind": "inference", "parse_rule": rule} for rule in rules] + [{"kind": "final"}]
    record = {"category": category, "correct": correct, "steps": steps, "time_info": {"latency": latency}}
    if error:
        record["error"] = error
    return record


def test_accuracy_parse_rate_latency_and_failures():
    records = [
        _record("math", True, ["strict", "lenient"], 2.0),
        _record("math", False, ["unparsed", "cancelled"], 4.0),
        _record("law", False, [], 6.0, error="ContextLengthExceeded: too long"),
    ]
    text = summarize(records, "local-smollm2-135m")
    assert "math" in text and "1/2" in text and "50.00%" in text
    assert "total" in text and "1/3" in text
    assert "inference responses parsed: 2/3 (66.7%; strict 1, lenient 1)" in text  # a cancelled call is not a reply
    assert "mean latency: 4.000 s over 3 questions (timing: profile local-smollm2-135m)" in text
    assert "failed questions: 1 (ContextLengthExceeded: 1)" in text
    assert "(timing: measured wall time)" in summarize(records, "measured")
