"""The WebSocket session fuzzed with hypothesis: random text and bytes, JSON nested
thousands deep, frames over the size limit, valid messages cut short, unknown event
types and known ones with wrong fields.  Each such frame gets exactly one ``error``
event (``bad_message`` or ``message_too_large``), the connection stays open, and a
question asked after them on the same session is answered.  Frames that happen to be
valid messages are left out (``assume``): they change the session's state, which is
the protocol tests' subject (test_serve.py)."""

from __future__ import annotations

import dataclasses
import json

from conftest import require_module, serve_client
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

require_module("fastapi", "the serve extra is not installed: pip install -e '.[serve]'")

from test_serve_inputs import ANSWER, ask, engine  # noqa: E402

from live_mind.serve import protocol  # noqa: E402
from live_mind.serve.app import create_app  # noqa: E402
from live_mind.serve.limits import Limits  # noqa: E402

MAX_BYTES = 65536  # room for JSON nested far past Python's recursion limit
SENTINEL = {"type": "sentinel-end-of-frames"}  # an unknown type: one bad_message naming it
VALID = [{"type": "start", "options": ["a", "b"]}, {"type": "text", "text": "The sky. Is blue"},
         {"type": "append", "text": " more"}, {"type": "submit", "text": "Why?", "options": ["x"]}, {"type": "reset"}]
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)


def nested(depth: int, opener: str) -> str:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return opener * depth + ("1" if opener != "[" else "") + closer * depth


FRAMES = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    st.builds(nested, st.integers(500, 30_000), st.sampled_from(["[", '{"a":'])),
    st.builds(lambda depth: "[" * depth, st.integers(1, 20_000)),  # nested and never closed
    st.builds(lambda n: json.dumps({"type": "text", "text": "x" * n}), st.integers(MAX_BYTES, 3 * MAX_BYTES)),
    st.builds(lambda msg, cut: json.dumps(msg)[: max(1, int(len(json.dumps(msg)) * cut))],
              st.sampled_from(VALID), st.floats(0.0, 0.99)),  # truncated
    st.builds(lambda kind, extra: json.dumps({"type": kind, **extra}), st.text(max_size=12) | st.integers() | st.none(),
              st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3)),  # unknown type
    st.builds(lambda msg, extra: json.dumps({**msg, **extra}), st.sampled_from(VALID),
              st.dictionaries(st.sampled_from(["text", "options", "baseline", "api_key", "reference", "x"]), JSON_VALUES,
                              min_size=1, max_size=3)),  # known type, random fields
    JSON_VALUES.map(json.dumps),
)


def send(ws, frame: str | bytes) -> None:
    """A text frame for text, a binary one for bytes and for text no text frame can
    carry (a lone surrogate: sent as its bytes)."""
    if isinstance(frame, bytes):
        ws.send_bytes(frame)
        return
    try:
        frame.encode("utf-8")
    except UnicodeEncodeError:
        ws.send_bytes(frame.encode("utf-8", "surrogatepass"))
        return
    ws.send_text(frame)


def is_valid_message(frame: str | bytes) -> bool:
    if len(frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else frame) > MAX_BYTES:
        return False
    try:
        protocol.parse_message(frame)
    except Exception:  # noqa: BLE001 - a protocol error, or one the server must survive all the same
        return False
    return True


APP = create_app(dataclasses.replace(engine(), limits=Limits(max_message_bytes=MAX_BYTES, max_rate=10_000, idle_timeout=10)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(frames=st.lists(FRAMES, min_size=1, max_size=4))
def test_every_malformed_frame_gets_one_error_and_the_session_goes_on(frames):
    for frame in frames:
        assume(not is_valid_message(frame))
    with serve_client(APP) as client, client.websocket_connect("/v1/session") as ws:
        assert ws.receive_json()["type"] == "ready"
        for frame in frames:
            send(ws, frame)
        ws.send_json(SENTINEL)
        events = []
        while not events or SENTINEL["type"] not in events[-1].get("message", ""):
            events.append(ws.receive_json())
        errors = events[:-1]
        assert len(errors) == len(frames) and all(e["type"] == "error" for e in errors), events
        assert {e["code"] for e in errors} <= {protocol.BAD_MESSAGE, protocol.MESSAGE_TOO_LARGE}, events
        assert [e["answer"] for e in ask(ws) if e["type"] == "final"] == [ANSWER]


def test_the_fuzzed_app_answers_a_plain_question_first():
    """The fuzz test's server, unfuzzed: the question it asks after the frames is answered."""
    with serve_client(APP) as client, client.websocket_connect("/v1/session") as ws:
        assert ws.receive_json()["type"] == "ready"
        assert [e["answer"] for e in ask(ws) if e["type"] == "final"] == [ANSWER]
