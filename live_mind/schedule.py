"""The schedule rules of the inference stage, written once (paper §3; v1 and v2).

Which segments the next inference call sees, given what has arrived -- the same rule
whether the clock is simulated (``clock.SimulatedClock``), the wall clock (the live
session and the server, ``live.py``) or a recorded run replayed under a cost profile
(``analysis/remodel.py``):

* ``every`` (v1): one call per segment, in order -- the next call sees one segment more
  than the previous one, even if more have arrived meanwhile;
* ``latest`` (v2): the next call sees every segment arrived so far;
* once the input is complete, ``latest`` and ``cancel_on_complete`` start no more
  inference calls; ``every`` without cancellation works through the segments it has
  not seen yet, as the paper's real-time solver does.
"""

from __future__ import annotations

SCHEDULES = ("every", "latest")
WAIT = 0
"""``next_visible``'s answer when nothing is to be done until a segment arrives."""


def check_schedule(schedule: str) -> None:
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}")


def stops_at_complete(schedule: str, cancel_on_complete: bool) -> bool:
    """Whether no inference call starts once the input is complete."""
    return cancel_on_complete or schedule == "latest"


def next_visible(schedule: str, cancel_on_complete: bool, consumed: int, arrived: int, complete: bool) -> int | None:
    """Segments the next inference call sees: ``None`` when the inference stage is over,
    ``WAIT`` (0) while no segment is pending.  ``consumed``: segments the previous call
    saw; ``arrived``: segments arrived by the moment the call would start; ``complete``:
    whether the whole input (options included) has arrived by then."""
    if complete and stops_at_complete(schedule, cancel_on_complete):
        return None
    if arrived > consumed:
        return arrived if schedule == "latest" else consumed + 1
    return None if complete else WAIT
