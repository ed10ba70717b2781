"""Prefill while typing: read the typed text into the prefix cache while the model idles.

In the paper's protocol (§4.1) the options are typed after the question, and the output
call then reads the whole options block -- about 160 of the final prompt's ~530 tokens
with the append-only UA-SPI format -- after the input is complete, on the latency path.
With prefill while typing, once the inference stage is over, each time the model is idle
and a new options line has been typed, a ``prefill_only`` call reads the output-stage
prompt built from the text typed so far into the output model's prefix cache.  At the
final call only what changed since the last prefill (the last options line, the answer
cue) is new.

Schedule (deterministic, on the question's simulated timeline): options line ``j`` --
the header ``Options are:`` is line 0 -- has arrived when its last character is typed
(the options block, as typed -- a newline after every option, as in the paper's v1
protocol -- is typed at a uniform rate between the last segment's arrival and the
options' arrival, which is 0.25 s per character under the default clock).  A prefill starts at ``max(model free, arrival of the next
unprefilled line)`` and reads every line arrived by then; no prefill starts once the
options are complete (the last line belongs to the final call).  Each prefill is charged
on the timeline like any call: one still running when the input completes delays the
final call (``overhead_time``).  Prefill calls are logged as steps of kind ``prefill``
and counted in ``usage`` (the final call stays last).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptionsPrefix:
    """The options text typed by ``arrival`` (whole lines only)."""

    arrival: float
    text: str


def options_prefixes(options_text: str, typing_start: float, options_at: float) -> list[OptionsPrefix]:
    """Every whole-line prefix of the options block except the complete block, with the
    time its last character (its newline) is typed.  ``options_text`` is the block as
    typed; a newline that ends it closes the complete block and yields no prefix."""
    total = len(options_text)
    out = []
    position = options_text.find("\n")
    while position != -1 and position < total - 1:
        arrival = typing_start + (options_at - typing_start) * (position + 1) / total
        out.append(OptionsPrefix(arrival, options_text[:position]))
        position = options_text.find("\n", position + 1)
    return out


def next_prefill(prefixes: list[OptionsPrefix], done: int, free_at: float, options_at: float) -> tuple[int, float] | None:
    """``(lines to prefill, start time)`` of the next prefill, or ``None``: ``done`` lines
    are already in the cache."""
    if done >= len(prefixes):
        return None
    start = max(free_at, prefixes[done].arrival)
    if start >= options_at:
        return None
    arrived = sum(1 for p in prefixes if p.arrival <= start)
    return arrived, start
