"""The session protocol: client messages in, server events out (JSON text frames).

A client message is a JSON object with a ``type``:

* ``start`` -- optional first message: ``options`` (list of strings, shown to the output
  model after the question), ``baseline`` (also run the CoT baseline after the answer),
  ``api_key`` (for browsers, which cannot set an ``Authorization`` header), ``reference``
  (the right answer: an option letter, or the free-form answer without options; the
  ``final`` event then carries ``pred`` and ``correct``, scored as ``tasks/scoring.py`` does),
  ``method`` (the method of this connection's questions, chosen before typing: one the
  ``ready`` event lists in ``methods``; default the server's ``--method``);
* ``text`` -- ``text``: the whole question typed so far (the robust form: a lost or
  dropped message is repaired by the next one);
* ``append`` -- ``text``: a chunk appended to the question (keystrokes, words, pastes);
* ``submit`` -- the user pressed Enter; optional ``text`` (the final question),
  ``options``, ``baseline`` and ``reference`` replace the ``start`` values;
* ``reset`` -- forget the question and start a new one on the same connection.

Anything else -- not JSON, not an object, an unknown type or field, a field of the wrong
type -- is a ``ProtocolError`` and the server answers with an ``error`` event; the
session goes on.  Server events are built by ``event``: a dict with ``type`` plus fields
(the table is in docs/serve.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..live import LiveEvent

MESSAGE_FIELDS: dict[str, frozenset[str]] = {
    "start": frozenset({"options", "baseline", "api_key", "reference", "method"}),
    "text": frozenset({"text"}),
    "append": frozenset({"text"}),
    "submit": frozenset({"text", "options", "baseline", "reference"}),
    "reset": frozenset(),
}
REQUIRED: dict[str, frozenset[str]] = {"text": frozenset({"text"}), "append": frozenset({"text"})}
MAX_OPTIONS = 10

# error codes of ``error`` events
BAD_MESSAGE = "bad_message"
BAD_STATE = "bad_state"
TEXT_TOO_LONG = "text_too_long"
MESSAGE_TOO_LARGE = "message_too_large"
RATE_LIMITED = "rate_limited"
IDLE_TIMEOUT = "idle_timeout"
TOO_MANY_SESSIONS = "too_many_sessions"
UNAUTHORIZED = "unauthorized"
MODEL_ERROR = "model_error"
BACKEND_UNAVAILABLE = "backend_unavailable"
FORBIDDEN = "forbidden"
INTERNAL = "internal"


class ProtocolError(ValueError):
    """A message the server cannot use; becomes an ``error`` event with ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Message:
    """One validated client message."""

    type: str
    text: str | None = None
    options: list[str] | None = None
    baseline: bool | None = None
    api_key: str | None = None
    reference: str | None = None  # the right answer (a letter, or free-form text): the final event scores it
    method: str | None = None  # the method of this connection's questions (a live method the server offers)


def parse_message(raw: str | bytes) -> Message:
    """Validate one frame; raises ``ProtocolError`` (code ``bad_message``)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(BAD_MESSAGE, f"not JSON: {exc}") from None
    except RecursionError:  # e.g. 6 KB of nested brackets: Python's parser recurses per level
        raise ProtocolError(BAD_MESSAGE, "not JSON this server reads: nested too deeply") from None
    if not isinstance(data, dict):
        raise ProtocolError(BAD_MESSAGE, "a message must be a JSON object")
    kind = data.get("type")
    if kind not in MESSAGE_FIELDS:
        raise ProtocolError(BAD_MESSAGE, f"unknown message type {kind!r}; expected one of {', '.join(MESSAGE_FIELDS)}")
    extra = set(data) - MESSAGE_FIELDS[kind] - {"type"}
    if extra:
        raise ProtocolError(BAD_MESSAGE, f"unknown field(s) for {kind!r}: {', '.join(sorted(extra))}")
    missing = REQUIRED.get(kind, frozenset()) - set(data)
    if missing:
        raise ProtocolError(BAD_MESSAGE, f"{kind!r} needs field(s): {', '.join(sorted(missing))}")
    text, options, baseline, key = data.get("text"), data.get("options"), data.get("baseline"), data.get("api_key")
    if text is not None and not isinstance(text, str):
        raise ProtocolError(BAD_MESSAGE, "'text' must be a string")
    if options is not None:
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise ProtocolError(BAD_MESSAGE, "'options' must be a list of strings")
        if len(options) > MAX_OPTIONS:
            raise ProtocolError(BAD_MESSAGE, f"at most {MAX_OPTIONS} options (A-J)")
    if baseline is not None and not isinstance(baseline, bool):
        raise ProtocolError(BAD_MESSAGE, "'baseline' must be true or false")
    if key is not None and not isinstance(key, str):
        raise ProtocolError(BAD_MESSAGE, "'api_key' must be a string")
    reference = data.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise ProtocolError(BAD_MESSAGE, "'reference' must be a string")
    method = data.get("method")
    if method is not None and not isinstance(method, str):
        raise ProtocolError(BAD_MESSAGE, "'method' must be a string")
    return Message(kind, text, options, baseline, key, reference, method)


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A server event."""
    return {"type": kind, **fields}


def error(code: str, message: str) -> dict[str, Any]:
    return event("error", code=code, message=message)


def live_event(ev: LiveEvent) -> dict[str, Any] | None:
    """The wire form of a live-core event (``None``: not sent as such -- the core's
    ``final`` is folded into the server's own ``final`` event with the latency)."""
    t = round(ev.time, 4)
    if ev.kind == "segment":
        return event("segment", text=ev.text, time=t)
    if ev.kind in ("action", "cancelled") and ev.step is not None and ev.step.kind != "inference":
        step = ev.step  # another method's call while typing: a speculation, a thought...
        completion = step.completion
        return event("step", name=step.kind, note=step.note, response=step.response, segments=step.segments, time=t,
                     seconds=round(completion.seconds, 4), kept=ev.kind != "cancelled",
                     usage={"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens})
    if ev.kind in ("action", "cancelled"):
        step = ev.step
        completion = step.completion
        action = step.action
        return event("action", name=step.action_name, content=action.content if action else "",
                     response=step.response, parse_rule=step.parse_rule, segments=step.segments, time=t,
                     seconds=round(completion.seconds, 4), kept=bool(action and not action.is_wait),
                     usage={"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens})
    if ev.kind == "error":
        return error(MODEL_ERROR, ev.text)
    if ev.kind == "unavailable":  # while the user types: told now, not only at submit
        return error(BACKEND_UNAVAILABLE, ev.text)
    if ev.kind == "final_start":
        return event("final_start", text=ev.text, time=t)
    if ev.kind == "token":
        return event("token", text=ev.text, time=t)
    if ev.kind == "answer_restart":
        return event("answer_restart", reason=ev.text, time=t)
    return None
