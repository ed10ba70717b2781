"""The session server with the scripted model: the WebSocket protocol (events in order,
actions before submit, the answer after), edits, disconnects that stop the calls, every
limit and malformed message as an error event with the server still serving, the plain
HTTP answer, the API key off loopback, and the command line's checks before any load."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pytest
from conftest import require_module, serve_client

require_module("fastapi", "the serve extra is not installed: pip install -e '.[serve]'")
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from live_mind.formats import make_format  # noqa: E402
from live_mind.methods.cot import CoTController  # noqa: E402
from live_mind.methods.livemind import LiveMindController  # noqa: E402
from live_mind.models.base import ChatRequest, Completion  # noqa: E402
from live_mind.models.scripted import ScriptedModel  # noqa: E402
from live_mind.runconfig import RunConfig  # noqa: E402
from live_mind.serve import auth, protocol  # noqa: E402
from live_mind.serve import main as serve_main  # noqa: E402
from live_mind.serve.app import create_app  # noqa: E402
from live_mind.serve.limits import Limits, RateLimiter, percentile  # noqa: E402
from live_mind.serve.session import Engine  # noqa: E402

QUESTION = "The sky is blue. It is noon. Why is the sky blue?"
OPTIONS = ["red", "scattering"]
ANSWER = "Light scatters. The answer is (B)."
ENTRY = """[models.serve-scripted]
backend = "scripted"
marker = "${LIVEMIND_TEST_MARKER:-}"
prime_actions = true
constrain_actions = false
seconds = 0.01
rules = { "Options are" = "Light scatters. The answer is (B).", "." = "inference. about the sky" }
"""
KEY = "k" * 20 + "-secret"


def TestClient(app, **kwargs):  # noqa: N802 - stands in for the class
    """A test client that names the server as a browser on this machine would (the
    server refuses other Host names: test_serve_guard.py)."""
    return serve_client(app, **kwargs)


@pytest.fixture
def models_file(tmp_path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(ENTRY)
    return path


def engine_from_flags(models_file: Path, *flags: str, log_dir: Path | None = None) -> Engine:
    """The engine exactly as ``serve.py`` builds it from its flags."""
    args = serve_main.parse_args(["--models", str(models_file), "--model", "serve-scripted", *flags])
    setup, limits, _ = serve_main.validate(args)
    engine = serve_main.build_engine(args, setup, limits)
    if log_dir is not None:
        engine.log_dir = log_dir
    return engine


def engine_for(model, limits: Limits = Limits(), baseline: bool = True) -> Engine:
    controller = LiveMindController(model, prompt_format=make_format("UA-SPI"), prime_actions=True, parse="lenient")
    base = CoTController(model) if baseline else None
    return Engine(controller, base, RunConfig(script="serve", model=model.name, schedule="latest"), limits)


def until(ws, kind: str, limit: int = 500) -> list[dict]:
    """Events up to and including the first of ``kind``."""
    seen = []
    for _ in range(limit):
        seen.append(ws.receive_json())
        if seen[-1]["type"] == kind:
            return seen
    raise AssertionError(f"no {kind!r} event in {limit}: {[e['type'] for e in seen]}")


def type_slowly(ws, text: str, start: int = 1) -> None:
    for i in range(start, len(text) + 1):
        ws.send_json({"type": "text", "text": text[:i]})


def ask(ws, question: str = QUESTION, baseline: bool = True) -> list[dict]:
    """A whole question: start, type, wait for an action, submit; events until ``done``."""
    ws.send_json({"type": "start", "options": OPTIONS, "baseline": baseline})
    type_slowly(ws, question)
    before = until(ws, "action")
    ws.send_json({"type": "submit"})
    return before + until(ws, "done")


# --------------------------------------------------------------------------- the protocol


def test_events_in_order_actions_before_submit_answer_after(models_file):
    engine = engine_from_flags(models_file)
    with TestClient(create_app(engine)) as client, client.websocket_connect("/v1/session") as ws:
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["model"] == "serve-scripted" and ready["baseline"] is True
        events = ask(ws)
    kinds = [e["type"] for e in events]
    submitted = kinds.index("submitted")
    assert "action" in kinds[:submitted]  # the model acted while the question was typed
    assert kinds[0] == "segment" and events[0]["text"] == "The sky is blue. "
    first_action = next(e for e in events if e["type"] == "action")
    assert first_action["name"] == "inference" and first_action["content"] == "about the sky" and first_action["kept"]
    after = kinds[submitted:]
    assert after.index("final_start") < after.index("token") < after.index("final") < after.index("baseline") < after.index("done")
    assert all(k in ("segment", "action", "submitted", "final_start", "token", "final", "baseline", "done") for k in after)
    streamed = "".join(e["text"] for e in events if e["type"] in ("final_start", "token", "final"))
    final = next(e for e in events if e["type"] == "final")
    assert streamed == final["answer"] == ANSWER
    assert final["latency"] >= 0 and final["busy_at_submit"] >= 0 and final["error"] is None
    assert final["usage"]["inference_calls"] >= 1 and final["usage"]["completion_tokens"] > 0
    at = events[submitted]["time"]
    assert all(e["time"] <= at for e in events[:submitted] if e["type"] == "action")
    assert all(e["time"] >= at for e in events[submitted:] if e["type"] in ("final_start", "token", "final"))
    baseline = next(e for e in events if e["type"] == "baseline")
    assert baseline["answer"] == ANSWER and baseline["latency"] >= 0


def test_append_chunks_reset_and_a_second_question(models_file):
    engine = engine_from_flags(models_file, "--no-baseline")
    with TestClient(create_app(engine)) as client, client.websocket_connect("/v1/session") as ws:
        assert ws.receive_json()["baseline"] is False
        ws.send_json({"type": "start", "options": OPTIONS, "baseline": True})  # no baseline offered: ignored
        for chunk in ("The sky ", "is blue. ", "It is noon. ", "Why is the sky blue?"):
            ws.send_json({"type": "append", "text": chunk})
        until(ws, "action")
        ws.send_json({"type": "submit"})
        events = until(ws, "done")
        assert "baseline" not in [e["type"] for e in events]
        ws.send_json({"type": "text", "text": "more"})
        assert until(ws, "error")[-1]["code"] == protocol.BAD_STATE
        ws.send_json({"type": "reset"})
        assert until(ws, "reset")
        events = ask(ws, "A new question starts here. Does it work?", baseline=False)
        assert next(e for e in events if e["type"] == "final")["answer"] == ANSWER


def test_edits_in_the_tail_are_free_and_inside_a_completed_segment_restart(models_file):
    engine = engine_from_flags(models_file)
    with TestClient(create_app(engine)) as client, client.websocket_connect("/v1/session") as ws:
        ws.receive_json()
        ws.send_json({"type": "text", "text": "The sky is blue. It is"})
        until(ws, "action")
        ws.send_json({"type": "text", "text": "The sky is blue. It was"})  # the unfinished sentence: fine
        ws.send_json({"type": "text", "text": "The sky is red. It was"})  # a completed one: start over
        events = until(ws, "restart")
        assert [e["type"] for e in events] in (["restart"], ["action", "restart"])
        events = until(ws, "action")
        assert events[0] == {"type": "segment", "text": "The sky is red. ", "time": events[0]["time"]}
        ws.send_json({"type": "submit", "options": OPTIONS, "baseline": False})
        final = next(e for e in until(ws, "done") if e["type"] == "final")
        assert final["usage"]["inference_calls"] == 1  # the calls before the restart are gone


# --------------------------------------------------------------------------- disconnect


@dataclass
class BlockingModel:
    """Blocks every call until its stop signal is set (or 10 s pass); counts what stopped."""

    name: str = "blocking"
    started: threading.Event = field(default_factory=threading.Event)
    stopped: list[ChatRequest] = field(default_factory=list)
    calls: list[ChatRequest] = field(default_factory=list)

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        [request] = requests
        self.calls.append(request)
        self.started.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (request.stop is not None and request.stop.is_set()):
            time.sleep(0.005)
        if request.stop is not None and request.stop.is_set():
            self.stopped.append(request)
        return [Completion("action inference. x", 1, 1, 0.0, finish_reason="cancelled")]


def wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("stage", ["typing", "answer"])
def test_disconnect_stops_the_calls(stage):
    model = BlockingModel()
    with TestClient(create_app(engine_for(model))) as client:
        with client.websocket_connect("/v1/session") as ws:
            ws.receive_json()
            if stage == "typing":
                ws.send_json({"type": "text", "text": "One sentence here. And"})
            else:
                ws.send_json({"type": "submit", "text": "Only one sentence?", "options": OPTIONS})
            assert wait_for(model.started.is_set)
        assert wait_for(lambda: len(model.stopped) == len(model.calls) >= 1), "the running call was not stopped"
        calls = len(model.calls)
        time.sleep(0.3)
        assert len(model.calls) == calls  # no call started after the disconnect
        if stage == "answer":  # the one call was the streamed answer, and it was stopped
            assert [r.on_token is not None for r in model.stopped] == [True]
        assert wait_for(lambda: client.get("/v1/stats").json()["sessions_active"] == 0)


# --------------------------------------------------------------------------- limits and bad input


BAD_MESSAGES = [
    ("not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    ('{"type": "bogus"}', "unknown message type"),
    ('{"text": "no type"}', "unknown message type"),
    ('{"type": "text"}', "needs field"),
    ('{"type": "text", "text": 5}', "must be a string"),
    ('{"type": "append", "text": "x", "extra": 1}', "unknown field"),
    ('{"type": "start", "options": "A|B"}', "list of strings"),
    ('{"type": "start", "options": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]}', "at most 10"),
    ('{"type": "start", "baseline": "yes"}', "true or false"),
    ('{"type": "submit"}', "question is empty"),
]


def test_malformed_messages_get_error_events_and_the_session_goes_on(models_file):
    engine = engine_from_flags(models_file)
    with TestClient(create_app(engine)) as client:
        with client.websocket_connect("/v1/session") as ws:
            ws.receive_json()
            for raw, words in BAD_MESSAGES:
                ws.send_text(raw)
                error = ws.receive_json()
                assert error["type"] == "error" and error["code"] in (protocol.BAD_MESSAGE, protocol.BAD_STATE), raw
                assert words in error["message"], (raw, error)
            ws.send_bytes(b"\xff\xfe")
            assert ws.receive_json()["code"] == protocol.BAD_MESSAGE
            events = ask(ws)  # the same session still answers
            assert next(e for e in events if e["type"] == "final")["answer"] == ANSWER
        stats = client.get("/v1/stats").json()
        assert stats["errors"][protocol.BAD_MESSAGE] == len(BAD_MESSAGES)
        assert stats["overhead_ms"]["events"] > 0 and stats["overhead_ms"]["p95"] >= 0


def test_text_and_message_size_limits(models_file):
    engine = engine_from_flags(models_file, "--max_text", "60", "--max_message_bytes", "400")
    with TestClient(create_app(engine)) as client, client.websocket_connect("/v1/session") as ws:
        ws.receive_json()
        ws.send_json({"type": "text", "text": "x" * 61})
        error = ws.receive_json()
        assert error["code"] == protocol.TEXT_TOO_LONG
        ws.send_json({"type": "append", "text": "y" * 500})
        assert ws.receive_json()["code"] == protocol.MESSAGE_TOO_LARGE
        ws.send_json({"type": "start", "options": ["o" * 61]})
        assert ws.receive_json()["code"] == protocol.TEXT_TOO_LONG
        assert next(e for e in ask(ws) if e["type"] == "final")["answer"] == ANSWER
        response = client.post("/v1/answer", json={"question": "q" * 61})
        assert response.status_code == 413 and "60 characters" in response.json()["detail"]


def test_rate_limit_drops_messages_with_an_error_and_recovers(models_file):
    engine = engine_from_flags(models_file, "--max_rate", "5")
    with TestClient(create_app(engine)) as client, client.websocket_connect("/v1/session") as ws:
        ws.receive_json()
        for i in range(12):
            ws.send_json({"type": "text", "text": "Hello"[: 1 + i % 5]})
        ws.send_json({"type": "start", "options": OPTIONS})
        errors = [e for e in until(ws, "error") if e["type"] == "error"]
        assert errors[0]["code"] == protocol.RATE_LIMITED
        time.sleep(1.2)  # the bucket refills
        ws.send_json({"type": "submit", "text": "A short question. Is it answered?", "options": OPTIONS, "baseline": False})
        events = until(ws, "done")
        assert next(e for e in events if e["type"] == "final")["answer"] == ANSWER


def test_rate_limiter_refills_at_its_rate():
    now = [0.0]
    bucket = RateLimiter(2.0, clock=lambda: now[0])
    assert [bucket.allow() for _ in range(3)] == [True, True, False]
    now[0] += 0.5
    assert bucket.allow() and not bucket.allow()
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0 and percentile([1.0, 2.0], 95) == 2.0


def test_idle_timeout_closes_with_an_error_and_others_go_on(models_file):
    engine = engine_from_flags(models_file, "--idle_timeout", "0.3")
    with TestClient(create_app(engine)) as client:
        with client.websocket_connect("/v1/session") as ws:
            ws.receive_json()
            error = ws.receive_json()
            assert error["code"] == protocol.IDLE_TIMEOUT
            with pytest.raises(WebSocketDisconnect):
                ws.receive_json()
        with client.websocket_connect("/v1/session") as ws:
            ws.receive_json()
            ws.send_json({"type": "submit", "text": "Quick. Question?", "options": OPTIONS, "baseline": False})
            assert next(e for e in until(ws, "done") if e["type"] == "final")["answer"] == ANSWER


def test_max_sessions_refuses_the_extra_session_only(models_file):
    engine = engine_from_flags(models_file, "--max_sessions", "1")
    with TestClient(create_app(engine)) as client:
        with client.websocket_connect("/v1/session") as first:
            first.receive_json()
            with client.websocket_connect("/v1/session") as second:
                error = second.receive_json()
                assert error["code"] == protocol.TOO_MANY_SESSIONS
                with pytest.raises(WebSocketDisconnect) as closed:
                    second.receive_json()
                assert closed.value.code == 1013
            assert client.post("/v1/answer", json={"question": "Is it full?"}).status_code == 503
            assert next(e for e in ask(first) if e["type"] == "final")["answer"] == ANSWER
        with client.websocket_connect("/v1/session") as third:  # the slot is free again
            assert third.receive_json()["type"] == "ready"


# --------------------------------------------------------------------------- plain HTTP, page, logs


def test_http_answer_with_typing_and_the_baseline(models_file):
    engine = engine_from_flags(models_file)
    with TestClient(create_app(engine)) as client:
        body = client.post("/v1/answer", json={"question": QUESTION, "options": OPTIONS, "typing_speed": 0.002,
                                               "baseline": True}).json()
        assert body["answer"] == ANSWER and body["baseline"]["answer"] == ANSWER and body["errors"] == []
        assert [a["name"] for a in body["actions"]] and body["actions"][0]["segments"] >= 1
        instant = client.post("/v1/answer", json={"question": QUESTION, "options": OPTIONS}).json()
        assert instant["answer"] == ANSWER and instant["baseline"] is None
        assert client.post("/v1/answer", json={"question": ""}).status_code == 422
        for speed in (0, -0.5):  # the one typing-speed rule (clock.check_typing_speed), as in the scripts
            refused = client.post("/v1/answer", json={"question": QUESTION, "typing_speed": speed})
            assert refused.status_code == 422 and "typing_speed must be > 0" in refused.text
        slow = client.post("/v1/answer", json={"question": "x" * 1000, "typing_speed": 1.0})
        assert slow.status_code == 400 and "idle_timeout" in slow.json()["detail"]
        info = client.get("/v1/info").json()
        assert info["auth_required"] is False and info["limits"]["max_sessions"] == 16
        assert len(client.get("/v1/samples").json()) == 14


def test_page_and_its_script_are_served_without_a_cdn(models_file):
    with TestClient(create_app(engine_from_flags(models_file))) as client:
        response = client.get("/")
        html = response.text
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
        assert 'id="question"' in html and 'id="replay"' in html and 'data-auth="none"' in html
        script = client.get("/static/app.js")
        assert script.status_code == 200 and "/v1/session" in script.text
        assert client.get("/static/style.css").status_code == 200
        assert client.get("/static/../main.py").status_code == 404
        for text in (html, script.text):
            assert "http://" not in text.replace("location.protocol", "") and "cdn" not in text.lower()


def test_nothing_is_written_unless_log_sessions(models_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = set(tmp_path.rglob("*"))
    with TestClient(create_app(engine_from_flags(models_file))) as client, client.websocket_connect("/v1/session") as ws:
        ws.receive_json()
        ask(ws)
    assert set(tmp_path.rglob("*")) == before
    logs = tmp_path / "logs"
    with TestClient(create_app(engine_from_flags(models_file, log_dir=logs))) as client, client.websocket_connect("/v1/session") as ws:
        ws.receive_json()
        ask(ws)
    [record] = [json.loads(p.read_text()) for p in logs.glob("*.json")]
    assert record["question"] == QUESTION and record["solution"] == ANSWER and record["baseline"]["answer"] == ANSWER


# --------------------------------------------------------------------------- the API key


def test_api_key_required_off_loopback():
    assert auth.is_loopback("127.0.0.1") and auth.is_loopback("::1") and auth.is_loopback("localhost")
    assert not auth.is_loopback("0.0.0.0") and not auth.is_loopback("192.168.1.5")
    assert auth.api_key_for("127.0.0.1", {}) is None
    with pytest.raises(auth.AuthError, match="LIVEMIND_API_KEY"):
        auth.api_key_for("0.0.0.0", {})
    with pytest.raises(auth.AuthError, match="too short"):
        auth.api_key_for("0.0.0.0", {auth.API_KEY_ENV: "short"})
    assert auth.api_key_for("0.0.0.0", {auth.API_KEY_ENV: KEY}) == KEY
    sixteen = "k" * auth.MIN_KEY_LENGTH
    assert auth.api_key_for("0.0.0.0", {auth.API_KEY_ENV: sixteen}) == sixteen  # the minimum length is enough
    with pytest.raises(auth.AuthError) as short:
        auth.api_key_for("127.0.0.1", {auth.API_KEY_ENV: sixteen[1:]})
    assert str(short.value).endswith("(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    with pytest.raises(auth.AuthError) as open_host:
        auth.api_key_for("0.0.0.0", {})
    assert str(open_host.value).endswith("(clients send it as 'Authorization: Bearer KEY'), or bind 127.0.0.1")
    assert auth.key_matches(KEY, KEY) and not auth.key_matches(KEY, KEY[:-1]) and not auth.key_matches(KEY, None)
    assert auth.bearer("Bearer abc") == "abc" and auth.bearer("Basic abc") is None and auth.bearer("") is None


def test_a_server_with_a_key_checks_every_request(models_file, caplog):
    engine = engine_from_flags(models_file)
    seen: list[str] = []
    with TestClient(create_app(engine, api_key=KEY)) as client:
        assert client.get("/healthz").status_code == 200
        assert 'data-auth="required"' in client.get("/").text
        for headers in ({}, {"Authorization": "Bearer wrong-key-wrong-key"}, {"Authorization": KEY}):
            response = client.get("/v1/info", headers=headers)
            assert response.status_code == 401
            seen.append(response.text)
            assert client.post("/v1/answer", json={"question": "Hi?"}, headers=headers).status_code == 401
        good = {"Authorization": f"Bearer {KEY}"}
        assert client.get("/v1/info", headers=good).json()["auth_required"] is True
        with client.websocket_connect("/v1/session") as ws:  # no key: refused at the first message
            ws.send_json({"type": "start", "api_key": "wrong-key-wrong-key"})
            error = ws.receive_json()
            seen.append(json.dumps(error))
            assert error["code"] == protocol.UNAUTHORIZED
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 1008
        with client.websocket_connect("/v1/session") as ws:  # a browser: the key in 'start'
            ws.send_json({"type": "start", "api_key": KEY, "options": OPTIONS})
            assert ws.receive_json()["type"] == "ready"
        with client.websocket_connect("/v1/session", headers=good) as ws:  # a program: the header
            ready = ws.receive_json()
            seen.append(json.dumps(ready))
            assert ready["type"] == "ready"
            assert next(e for e in ask(ws) if e["type"] == "final")["answer"] == ANSWER
    assert all(KEY not in text for text in seen + [caplog.text])


# --------------------------------------------------------------------------- the command line


def test_cli_rejects_bad_input_before_any_model_loads(models_file, tmp_path, monkeypatch, capsys):
    marker = tmp_path / "built.txt"
    monkeypatch.setenv("LIVEMIND_TEST_MARKER", str(marker))
    monkeypatch.delenv(auth.API_KEY_ENV, raising=False)
    base = ["--models", str(models_file), "--model", "serve-scripted"]
    cases = [
        (["--host", "0.0.0.0"], "LIVEMIND_API_KEY"),
        (["--max_sessions", "0"], "--max_sessions must be > 0"),
        (["--idle_timeout", "-1"], "--idle_timeout must be > 0"),
        (["--port", "70000"], "--port"),
        (["--typing_speed", "0"], "--typing_speed"),
        (["--model", "nope"], "unknown model 'nope'"),
        (["--log_sessions", str(models_file)], "not a folder"),
    ]
    for flags, words in cases:
        assert serve_main.main(base + flags) == 2, flags
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, (flags, err)
    monkeypatch.setenv(auth.API_KEY_ENV, "short")
    assert serve_main.main(base + ["--host", "0.0.0.0"]) == 2
    assert "too short" in capsys.readouterr().err
    assert not marker.exists()


def test_run_configuration_names_the_server_and_keeps_answers_config_id(models_file):
    args = serve_main.parse_args(["--models", str(models_file), "--model", "serve-scripted"])
    config = serve_main.validate(args)[0].config
    moved = serve_main.validate(serve_main.parse_args(["--models", str(models_file), "--model", "serve-scripted",
                                                       "--port", "9001", "--max_sessions", "3"]))[0].config
    assert config["script"] == "serve" and config["prompt_format"] == "UA-SPI" and config["use_lm"] is True
    assert config["model_config"]["model"]["name"] == "serve-scripted" and config["prime_actions"] is True
    assert moved["config_id"] == config["config_id"] and moved["server"]["port"] == 9001
    line = serve_main.printable_config(config)
    assert "prompt_texts" not in line and json.loads(line)["config_id"] == config["config_id"]


def test_scripted_model_is_shared_not_copied(models_file):
    engine = engine_from_flags(models_file)
    guard = engine.controller.inference_model  # the loaded model behind the run's outage guard
    model = getattr(guard, "inner", guard)
    assert isinstance(model, ScriptedModel)
    with TestClient(create_app(engine)) as client:
        for _ in range(2):
            with client.websocket_connect("/v1/session") as ws:
                ws.receive_json()
                ask(ws, baseline=False)
    keys = {r.cache_key for r in model.calls}
    assert len(keys) == 2  # one model, each session's calls under its own cache key
    handle = engine.controllers(threading.Event())[0].inference_model
    assert handle.inner is guard and not handle.native_async  # the contract passed through; calls via complete


# --------------------------------------------------------------------------- the load benchmark


def test_load_benchmark_against_a_real_server(models_file, tmp_path, live_server):
    import importlib.util

    require_module("websockets", "the serve extra is not installed")
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "serve_load.py"
    spec = importlib.util.spec_from_file_location("serve_load", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    url = live_server(create_app(engine_from_flags(models_file, "--max_sessions", "3")))
    out = tmp_path / "load.json"
    assert bench.main(["--url", url, "--sessions", "3", "--typing_speed", "0.003", "--baseline", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {"sessions", "completed", "errors", "latency_p50", "latency_p95", "latency_max"} <= set(report)
    assert report["sessions"] == report["completed"] == 3 and report["errors"] == 0
    assert 0 <= report["latency_p50"] <= report["latency_p95"] <= report["latency_max"]
    assert report["baseline_latency_p50"] is not None and report["server"]["overhead_ms"]["events"] > 0
    assert report["answer_tokens_mean"] == report["baseline_answer_tokens_mean"] == 6.0  # "Light scatters. The answer is (B)."
    over = tmp_path / "over.json"  # one typist more than the server takes: counted as an error, not a crash
    assert bench.main(["--url", url, "--sessions", "4", "--typing_speed", "0.003", "--json", str(over)]) == 1
    report = json.loads(over.read_text())
    assert report["completed"] == 3 and report["errors"] == 1 and report["error_codes"] == {"too_many_sessions": 1}


def test_serve_script_refuses_an_open_host_without_a_key(models_file, tmp_path):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != auth.API_KEY_ENV}
    result = subprocess.run([sys.executable, str(root / "serve.py"), "--models", str(models_file), "--model", "serve-scripted",
                             "--host", "0.0.0.0"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "LIVEMIND_API_KEY" in result.stderr and "loading" not in result.stderr


def test_the_baseline_gets_the_resolved_token_limit(models_file):
    engine = engine_from_flags(models_file)  # no --max_new_tokens: the per-model default (512) applies
    assert engine.baseline.max_new_tokens == engine.run.max_new_tokens == 512


def test_the_servers_engine_does_not_latch_after_an_outage_past_max_outage(tmp_path):
    """Built as serve.py builds it (``serve_main.build_engine``): a backend away longer
    than --max_outage fails that call (503), and once it is back the next call is
    answered -- a latching guard, the solvers' policy, would refuse every later call."""
    down = tmp_path / "down"
    models = tmp_path / "models.toml"
    models.write_text(ENTRY + f'unavailable_while = "{down}"\n')
    engine = engine_from_flags(models, "--max_outage", "0.3", "--no-baseline")
    with TestClient(create_app(engine)) as client:
        down.touch()
        failed = client.post("/v1/answer", json={"question": QUESTION, "options": OPTIONS})
        assert failed.status_code == 503 and failed.json()["code"] == protocol.BACKEND_UNAVAILABLE
        down.unlink()
        again = client.post("/v1/answer", json={"question": QUESTION, "options": OPTIONS})
        assert again.status_code == 200 and again.json()["answer"] == ANSWER


# --------------------------------------------------------------------------- the method, per session


def test_each_connection_chooses_its_method_and_sees_its_events(models_file):
    engine = engine_from_flags(models_file)
    with TestClient(create_app(engine)) as client:
        with client.websocket_connect("/v1/session") as ws:
            ready = ws.receive_json()
            assert ready["method"] == "livemind" and set(ready["methods"]) == {"livemind", "cot", "predgen", "continuous"}
            ws.send_json({"type": "start", "options": OPTIONS, "baseline": False, "method": "predgen"})
            type_slowly(ws, QUESTION)
            before = until(ws, "step")
            ws.send_json({"type": "submit"})
            events = before + until(ws, "done")
        step = next(e for e in events if e["type"] == "step")
        assert step["name"] == "speculation" and step["note"] in ("finished", "cancelled")
        final = next(e for e in events if e["type"] == "final")
        assert final["method"] == "predgen" and final["note"] in ("reused", "drafted", "afresh")
        assert not any(e["type"] == "action" for e in events)
        with client.websocket_connect("/v1/session") as ws:  # another connection: the server's own method
            ws.receive_json()
            events = ask(ws, baseline=False)
            assert next(e for e in events if e["type"] == "final")["method"] == "livemind"


@pytest.mark.parametrize(("message", "code"), [
    ({"type": "start", "method": "nosuch"}, "bad_message"),
    ({"type": "start", "method": 3}, "bad_message"),
])
def test_an_unknown_method_is_one_error_event_and_the_session_goes_on(models_file, message, code):
    with TestClient(create_app(engine_from_flags(models_file))) as client, client.websocket_connect("/v1/session") as ws:
        ws.receive_json()
        ws.send_json(message)
        error = ws.receive_json()
        assert error["type"] == "error" and error["code"] == code
        events = ask(ws, baseline=False)
        assert next(e for e in events if e["type"] == "final")["method"] == "livemind"


def test_the_method_is_chosen_before_typing(models_file):
    with TestClient(create_app(engine_from_flags(models_file))) as client, client.websocket_connect("/v1/session") as ws:
        ws.receive_json()
        ws.send_json({"type": "text", "text": "The sky"})
        ws.send_json({"type": "start", "method": "cot"})
        error = until(ws, "error")[-1]
        assert error["code"] == "bad_state" and "before typing" in error["message"]
        ws.send_json({"type": "reset"})
        ws.send_json({"type": "start", "method": "cot", "options": OPTIONS, "baseline": False})
        type_slowly(ws, QUESTION)
        ws.send_json({"type": "submit"})
        events = until(ws, "done")
        final = next(e for e in events if e["type"] == "final")
        assert final["method"] == "cot" and final["usage"]["typing_calls"] == 0
