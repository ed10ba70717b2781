"""The session server against inputs and failures users meet: a deeply nested frame
(``bad_message``, and the session answers after it), ``NaN`` in a request body (422,
not 500), an idle server whose backend died (``/healthz`` 503 with no question asked),
and an outage met while the user types (``backend_unavailable`` at once, not at submit)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import require_module, serve_client

require_module("fastapi", "the serve extra is not installed: pip install -e '.[serve]'")

from test_serve import until  # noqa: E402

from live_mind.formats import make_format  # noqa: E402
from live_mind.methods.cot import CoTController  # noqa: E402
from live_mind.methods.livemind import LiveMindController  # noqa: E402
from live_mind.models.base import ChatRequest, Completion  # noqa: E402
from live_mind.models.outage import guard  # noqa: E402
from live_mind.models.scripted import ConfiguredScriptedModel  # noqa: E402
from live_mind.runconfig import RunConfig  # noqa: E402
from live_mind.serve import protocol  # noqa: E402
from live_mind.serve.app import create_app  # noqa: E402
from live_mind.serve.limits import Limits  # noqa: E402
from live_mind.serve.session import Engine  # noqa: E402

OPTIONS = ["red", "scattering"]
ANSWER = "Light scatters. The answer is (B)."
RULES = [("Options are", ANSWER), (".", "inference. about the sky")]
IDLE = 10.0  # a test waiting for an event that never comes ends with the idle_timeout error


class ServerBackend(ConfiguredScriptedModel):
    """A scripted backend in another process, as far as the guard can tell: it has a
    native ``acomplete`` (an OpenAI-compatible server, vLLM's engine)."""

    native_async = True

    async def acomplete(self, request: ChatRequest) -> Completion:
        return self.complete([request])[0]


def engine(down: Path | None = None, max_outage: float = 0.4, native: bool = False, idle_probe: float = 0.3) -> Engine:
    cls = ServerBackend if native else ConfiguredScriptedModel
    model = cls(name="switchable", seconds=0.01, unavailable_while=str(down) if down else None, rules=RULES)
    model = guard(model, max_outage=max_outage, first_delay=0.05, max_delay=0.1, latch=False, idle_probe=idle_probe)
    controller = LiveMindController(model, prompt_format=make_format("UA-SPI"), prime_actions=True, parse="lenient")
    return Engine(controller, CoTController(model), RunConfig(script="serve", model=model.name, schedule="latest"),
                  Limits(idle_timeout=IDLE))


def ask(ws) -> list[dict]:
    ws.send_json({"type": "start", "options": OPTIONS})
    ws.send_json({"type": "submit", "text": "The sky is blue. Why is the sky blue?"})
    return until(ws, "done")


@pytest.mark.parametrize("frame", ["[" * 6000, '{"type": "text", "text": ' + "[" * 6000, '{"a":' * 2000 + "1" + "}" * 2000])
def test_a_deeply_nested_frame_is_a_bad_message_and_the_session_answers_after_it(frame):
    with serve_client(create_app(engine())) as client, client.websocket_connect("/v1/session") as ws:
        assert ws.receive_json()["type"] == "ready"
        ws.send_text(frame)
        error = ws.receive_json()
        assert error["type"] == "error" and error["code"] == protocol.BAD_MESSAGE and "nested" in error["message"]
        finals = [e for e in ask(ws) if e["type"] == "final"]
        assert [e["answer"] for e in finals] == [ANSWER]


@pytest.mark.parametrize("body", ['{"question": "Why?", "typing_speed": NaN}', '{"question": "Why?", "typing_speed": Infinity}',
                                  '{"question": "Why?", "typing_speed": -Infinity}', '{"question": "Why?", "options": [NaN]}'])
def test_a_non_finite_number_in_the_body_is_422_not_500(body):
    with serve_client(create_app(engine())) as client:
        response = client.post("/v1/answer", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, response.text
        assert response.json()["detail"]


def test_an_idle_servers_health_check_notices_its_backend_died(tmp_path):
    down = tmp_path / "down"
    with serve_client(create_app(engine(down, max_outage=60, native=True))) as client:
        assert client.get("/healthz").status_code == 200
        down.touch()  # the backend dies between calls; nobody asks a question
        deadline, status = time.monotonic() + 5, 200
        while status == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
            status = client.get("/healthz").status_code
        assert status == 503, "the idle server still says it is healthy"
        assert "unavailable" in client.get("/healthz").json()["reason"]
        down.unlink()
        deadline = time.monotonic() + 5
        while client.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline, "the backend came back but /healthz did not say so"
            time.sleep(0.1)


def test_idle_probes_are_rate_limited_and_skip_in_process_models(tmp_path):
    down = tmp_path / "down"
    served = engine(down, native=True, idle_probe=0.3)
    model = served.controller.inference_model
    with serve_client(create_app(served)) as client:
        for _ in range(20):
            assert client.get("/healthz").status_code == 200
        assert model.probes == 0, "a probe within idle_probe of the guard's start"
        time.sleep(0.35)
        for _ in range(20):
            assert client.get("/healthz").status_code == 200
        assert model.probes == 1, "one probe per idle_probe, however often /healthz is asked"
    local = engine(down, native=False, idle_probe=0.01)
    down.touch()
    time.sleep(0.05)
    with serve_client(create_app(local)) as client:
        assert client.get("/healthz").status_code == 200 and local.controller.inference_model.probes == 0


def test_an_outage_while_typing_is_reported_when_it_happens(tmp_path):
    down = tmp_path / "down"
    with serve_client(create_app(engine(down, max_outage=0.3))) as client, client.websocket_connect("/v1/session") as ws:
        assert ws.receive_json()["type"] == "ready"
        ws.send_json({"type": "start", "options": OPTIONS})
        down.touch()
        ws.send_json({"type": "text", "text": "The sky is blue. It is noon."})
        seen = until(ws, "error")
        assert seen[-1]["code"] == protocol.BACKEND_UNAVAILABLE and "max_outage" in seen[-1]["message"]
        ws.send_json({"type": "submit", "text": "The sky is blue. It is noon. Why?"})
        after = until(ws, "done")
        assert not [e for e in after if e["type"] == "error"], "the same outage reported twice"
        down.unlink()
        ws.send_json({"type": "reset"})
        assert ws.receive_json()["type"] == "reset"
        assert [e["answer"] for e in ask(ws) if e["type"] == "final"] == [ANSWER]


@pytest.mark.parametrize("frame, message", [
    ("[" * 6000, "not JSON this server reads: nested too deeply"),
    ("[1]", "a message must be a JSON object"),
    ('{"type": "typed"}', "unknown message type 'typed'; expected one of start, text, append, submit, reset"),
    ('{"type": "text", "text": "x", "txet": 1, "b": 2}', "unknown field(s) for 'text': b, txet"),
    ('{"type": "append"}', "'append' needs field(s): text"),
    ('{"type": "start", "options": ["a", 1]}', "'options' must be a list of strings"),
    ('{"type": "start", "options": ' + str(["o"] * 11).replace("'", '"') + "}", "at most 10 options (A-J)"),
    ('{"type": "start", "baseline": 1}', "'baseline' must be true or false"),
    ('{"type": "start", "method": 1}', "'method' must be a string"),
    ('{"type": "text", "text": 1}', "'text' must be a string"),
    ('{"type": "start", "api_key": 1}', "'api_key' must be a string"),
    ('{"type": "submit", "text": "x", "reference": ["Tokyo"]}', "'reference' must be a string"),
])
def test_a_bad_frame_is_named_in_the_words_the_client_sees(frame, message):
    """The ``error`` event's message is the client's only clue: each one exactly."""
    with pytest.raises(protocol.ProtocolError) as info:
        protocol.parse_message(frame)
    assert (info.value.code, str(info.value)) == (protocol.BAD_MESSAGE, message)



def test_a_good_frame_keeps_every_field_and_ten_options_are_allowed():
    message = protocol.parse_message('{"type": "submit", "text": "Capital?", "reference": "Tokyo", "baseline": true, '
                                     '"options": ' + str([f"o{k}" for k in range(10)]).replace("'", '"') + "}")
    assert (message.type, message.text, message.reference, message.baseline) == ("submit", "Capital?", "Tokyo", True)
    assert len(message.options) == 10


def test_a_segment_event_carries_its_text_and_time_to_the_tenth_of_a_millisecond():
    from live_mind.live import LiveEvent

    assert protocol.live_event(LiveEvent("segment", 1.234567, "The sky is blue.")) == {
        "type": "segment", "text": "The sky is blue.", "time": 1.2346}


def _step(kind: str, action=None, parse_rule=None, note=None):
    from live_mind.steps import StepResult

    return StepResult(kind, 2, [], "action inference. It is blue.", Completion("x", 30, 7, 0.123456), action, parse_rule, note)


def test_action_and_step_events_carry_every_field_the_page_reads():
    """The wire form of a call made while the user types: LiveMind's action (kept unless a
    wait) and another method's step (kept unless cancelled), each with its usage."""
    from live_mind.actions import Action
    from live_mind.live import LiveEvent

    usage = {"prompt_tokens": 30, "completion_tokens": 7}
    inferred = _step("inference", Action("inference", "It is blue.", "strict"), "strict")
    assert protocol.live_event(LiveEvent("action", 2.5, step=inferred)) == {
        "type": "action", "name": "inference", "content": "It is blue.", "response": "action inference. It is blue.",
        "parse_rule": "strict", "segments": 2, "time": 2.5, "seconds": 0.1235, "kept": True, "usage": usage}
    waited = protocol.live_event(LiveEvent("action", 2.5, step=_step("inference", Action("wait", "", "strict"), "strict")))
    unparsed = protocol.live_event(LiveEvent("cancelled", 2.5, step=_step("inference", None, "cancelled")))
    assert (waited["kept"], waited["name"]) == (False, "wait")
    assert (unparsed["type"], unparsed["name"], unparsed["content"], unparsed["kept"]) == ("action", "cancelled", "", False)
    speculation = _step("speculation", note="drafted")
    assert protocol.live_event(LiveEvent("action", 3.0, step=speculation)) == {
        "type": "step", "name": "speculation", "note": "drafted", "response": "action inference. It is blue.", "segments": 2,
        "time": 3.0, "seconds": 0.1235, "kept": True, "usage": usage}
    cut = protocol.live_event(LiveEvent("cancelled", 3.0, step=speculation))
    assert (cut["type"], cut["kept"]) == ("step", False)  # a cut speculation is still a step, not an action
    assert protocol.live_event(LiveEvent("error", 3.5, "model failed")) == {
        "type": "error", "code": protocol.MODEL_ERROR, "message": "model failed"}
    assert protocol.live_event(LiveEvent("answer_restart", 4.0, "connection reset")) == {
        "type": "answer_restart", "reason": "connection reset", "time": 4.0}
