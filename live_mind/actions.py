"""Action sets and the action parser (paper §3.2).

At each new segment the inference model answers ``action NAME. content``.  The
*complete action set* (CAS) offers background / inference / hypothesize / wait; the
*simplified action set* (SAS) offers inference / wait.  ``wait`` carries no content and
is never kept in the model's memory.

Parsing has two rules and every parsed action records which one matched:

``strict``
    The paper's rule, ``^action ([a-z]+).[ \\n]*(.*)$`` with DOTALL, applied to the raw
    response, plus a check that the name is in the action set.
``lenient``
    For small models: case-insensitive, leading whitespace/markdown, ``:`` / ``-`` or
    nothing instead of the period, and a bare action name at the start of the reply
    ("Inference: ...").  Content is the rest of the response.

Anything else is ``unparsed``: logged and counted by the caller, never kept.

Which replies are *kept* is the run's parse rule (``--parse``, ``parse_reply``):

``v1``
    The paper's solvers, quirks included.  Only the strict pattern is tried on the raw
    reply (its ``.`` after the name matches any character, so ``action wait`` without a
    period gives the name ``wai``).  The real-time solver keeps every matched reply
    whose name is not ``wait``, whatever the name and under SAS as under CAS (names
    outside the action set are only logged); the batched solver keeps a matched reply
    only when its name is background, inference or hypothesize.  Unmatched replies are
    dropped.
``lenient``
    This toolkit's rule for small models: strict, then lenient, name checked against
    the run's action set (``parse_action``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

BACKGROUND, INFERENCE, HYPOTHESIZE, WAIT = "background", "inference", "hypothesize", "wait"

ACTION_SETS: dict[str, tuple[str, ...]] = {
    "CAS": (BACKGROUND, INFERENCE, HYPOTHESIZE, WAIT),
    "SAS": (INFERENCE, WAIT),
}

ACTION_DESCRIPTIONS: dict[str, str] = {
    BACKGROUND: "work out the background knowledge the topic of the problem needs",
    INFERENCE: "draw inferences from the information given so far",
    HYPOTHESIZE: "guess what the final question will ask and try to solve it",
    WAIT: "the information so far is not enough to do anything useful; wait for more input",
}

STRICT, LENIENT, UNPARSED = "strict", "lenient", "unparsed"
PARSE_RULES: tuple[str, ...] = ("v1", "lenient")
DEFAULT_PARSE = "v1"
"""The paper's rule: the default of the scripts and of ``LiveMindController``."""

_STRICT = re.compile(r"^action ([a-z]+).[ \n]*(.*)$", re.DOTALL)
_LENIENT = re.compile(
    r"^[\s*_#>`\"']*(?:action\s*[:\-]?\s*[*_`\"']*)?([A-Za-z]+)[*_`\"']*\s*(?:[.:\-\u2013\u2014]|\n|$)[ \t]*\n?(.*)$",
    re.DOTALL | re.IGNORECASE,
)


@dataclass(frozen=True)
class Action:
    """One parsed inference-stage action."""

    name: str
    content: str
    rule: str  # STRICT or LENIENT
    raw: str = field(default="", compare=False)  # the reply as the model wrote it

    @property
    def is_wait(self) -> bool:
        return self.name == WAIT

    def render(self) -> str:
        """Canonical text, as the v1 batched files store kept actions."""
        return f"action {self.name}." if self.is_wait else f"action {self.name}. {self.content}"


def action_set(name: str) -> tuple[str, ...]:
    """The action names of ``"CAS"`` or ``"SAS"``."""
    try:
        return ACTION_SETS[name.upper()]
    except KeyError:
        raise ValueError(f"unknown action set {name!r}; choose CAS or SAS") from None


def parse_action(response: str, allowed: tuple[str, ...] = ACTION_SETS["CAS"]) -> Action | None:
    """Parse a response into an :class:`Action`, or ``None`` if no rule matches.

    Under the lenient rule the action name must be the first word of the reply, or the
    first word after a leading "action"; a name found later (inside the content) never
    counts, so ``action background. Inference: ...`` is rejected under SAS rather than
    read as an inference.
    """
    match = _STRICT.match(response)
    if match and match.group(1) in allowed:
        return Action(match.group(1), _clean(match.group(1), match.group(2)), STRICT, response)
    match = _LENIENT.match(response)
    if match and match.group(1).lower() in allowed:
        name = match.group(1).lower()
        return Action(name, _clean(name, match.group(2), markdown=True), LENIENT, response)
    return None


def parse_reply(response: str, allowed: tuple[str, ...], rule: str = "lenient", batched: bool = False) -> Action | None:
    """Parse an inference reply under the run's parse rule (see module notes).

    ``None`` means the reply is dropped (recorded as ``unparsed``); a returned action is
    kept unless it is ``wait``.  ``batched`` selects the v1 batched solver's variant.
    """
    if rule == "lenient":
        return parse_action(response, allowed)
    if rule != "v1":
        raise ValueError(f"unknown parse rule {rule!r}; choose {' or '.join(PARSE_RULES)}")
    match = _STRICT.match(response)
    if not match:
        return None
    name = match.group(1)
    if batched and name not in ACTION_SETS["CAS"]:
        return None
    return Action(name, _clean(name, match.group(2)), STRICT, response)


def _clean(name: str, content: str, markdown: bool = False) -> str:
    """Content as kept in memory: stripped (lenient: also of the closing markdown of a
    bold name, as in ``**Inference:** ...``); empty for ``wait``."""
    if name == WAIT:
        return ""
    content = content.strip()
    return content.lstrip("*_`").strip() if markdown else content


def parse_rule(action: Action | None) -> str:
    """The rule name recorded for a (possibly failed) parse."""
    return action.rule if action is not None else UNPARSED
