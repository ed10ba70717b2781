"""One model call of one question, as every method logs it (the records' ``steps``).

A method's calls are ``StepResult`` values whatever the method: ``records.py`` builds
the output record from them without knowing which method made them.  ``kind`` says what
the call was for -- ``"inference"`` (LiveMind's inference stage, paper §3), ``"prefill"``
(a prompt read into the prefix cache, nothing generated), ``"final"`` (the answer that is
scored), or a method's own kind (e.g. ``"speculation"``) -- and ``note`` is a method's
word on the call (e.g. how a speculative answer was used), saved only when set.
"""

from __future__ import annotations

from dataclasses import dataclass

from .actions import UNPARSED, Action
from .models.base import Completion, Message


@dataclass
class StepResult:
    """One model call of one question."""

    kind: str  # "inference", "prefill", "final", or a method's own kind
    segments: int
    messages: list[Message]
    response: str
    completion: Completion
    action: Action | None = None
    parse_rule: str | None = None
    note: str | None = None

    @property
    def action_name(self) -> str | None:
        if self.kind != "inference":
            return None
        if self.parse_rule == "cancelled":
            return "cancelled"
        return self.action.name if self.action is not None else UNPARSED
