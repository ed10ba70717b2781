"""The simulated clock's driver of a two-stage method (``base.StagedMethod``).

The method decides; this driver keeps time (paper §4.1's clock, one model):

* a typing-stage call starts once the model is free and a segment newer than those the
  previous call saw has arrived, on every segment arrived by then (older ones are never
  called on alone), and none starts once the input is complete;
* under ``supersede`` the next segment's arrival stops it: under a cost profile it is
  generated only as far as it gets before then (``timeline.tokens_before``), and one
  that would run past it is cut (``cut=True``) -- charged up to that moment when its
  output is dropped, in full when the method keeps the thinking it did (``keep_cut``);
* the answering call starts once the model is free and the input complete; latency =
  its end - the complete input.

The wall-clock counterpart is ``live.LiveSession``; LiveMind keeps its own simulated
procedure (``livemind.py``), the paper's v1 schedules with their exact timing.
"""

from __future__ import annotations

from ..clock import CallTime, TimeInfo
from ..timeline import QuestionInput, tokens_before
from .base import MethodRun, StagedMethod


def simulate(method: StagedMethod, q: QuestionInput) -> MethodRun:
    """Run ``method`` over the typed input ``q``: yields its calls, returns the timeline."""
    timing, free, seen, calls = q.timing, 0.0, 0, []
    answering = method.model_for(False) is method.model_for(True)
    while seen < len(q.arrivals) and (start := max(free, q.arrivals[seen])) < q.complete_at:
        seen = sum(1 for a in q.arrivals if a <= start)
        request = method.typing_request(q.segments[:seen])
        if request is None:
            continue
        until = q.arrivals[seen] if seen < len(q.arrivals) else q.complete_at
        capped = False
        if method.supersede and (fits := tokens_before(timing, start, until, answering)) is not None:
            capped = fits < request.max_new_tokens
            request.max_new_tokens = min(request.max_new_tokens, fits)
        completion = yield method.model_for(False), request
        end = start + timing.charge(completion, answering)
        cut = method.supersede and (end > until or (capped and completion.finish_reason == "length"))
        if cut and not method.keep_cut:
            end = min(end, until)
        method.typing_result(request, completion, seen, cut)
        calls.append(CallTime(seen, q.arrivals[seen - 1], start, end, cut))
        free = end
    request = method.final_request(q.segments, q.options_text, q.options_count)
    step = method.final_result(request, (yield method.model_for(True), request), len(q.segments))
    start = max(free, q.complete_at)
    end = start + timing.charge(step.completion, answering=True)
    calls.append(CallTime(len(q.segments), q.complete_at, start, end))
    return calls, TimeInfo(end, end - q.complete_at, sum(c.seconds for c in calls), max(0.0, free - q.complete_at))
