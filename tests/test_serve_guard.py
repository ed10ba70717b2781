"""The session server's guards: Host and Origin checks with forged headers (403, no
session created; the flags that open them), and a backend outage (``/healthz`` 503
during it and 200 after, ``backend_unavailable`` events for the calls in flight, a new
session answered once the backend is back, with no restart of the server)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import require_module, serve_client

require_module("fastapi", "the serve extra is not installed: pip install -e '.[serve]'")
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from live_mind.formats import make_format  # noqa: E402
from live_mind.methods.cot import CoTController  # noqa: E402
from live_mind.methods.livemind import LiveMindController  # noqa: E402
from live_mind.models.outage import guard  # noqa: E402
from live_mind.models.scripted import ConfiguredScriptedModel  # noqa: E402
from live_mind.runconfig import RunConfig  # noqa: E402
from live_mind.serve import auth  # noqa: E402
from live_mind.serve import main as serve_main  # noqa: E402
from live_mind.serve.app import create_app  # noqa: E402
from live_mind.serve.session import Engine  # noqa: E402

OWN = "http://127.0.0.1:8000"
OPTIONS = ["red", "scattering"]


def engine(down: Path | None = None, max_outage: float = 0.4) -> Engine:
    model = ConfiguredScriptedModel(name="switchable", seconds=0.01, unavailable_while=str(down) if down else None,
                                    rules=[("Options are", "Light scatters. The answer is (B)."), (".", "inference. about the sky")])
    model = guard(model, max_outage=max_outage, first_delay=0.05, max_delay=0.1, latch=False)
    controller = LiveMindController(model, prompt_format=make_format("UA-SPI"), prime_actions=True, parse="lenient")
    return Engine(controller, CoTController(model), RunConfig(script="serve", model=model.name, schedule="latest"))


# --------------------------------------------------------------------------- Host and Origin


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:8001", "https://127.0.0.1:8000.evil.example"])
def test_a_websocket_from_another_origin_is_refused_and_creates_no_session(origin):
    app = create_app(engine())
    with serve_client(app) as client:
        with pytest.raises(WebSocketDisconnect) as info:
            with client.websocket_connect("/v1/session", headers={"Origin": origin}):
                pass
        assert info.value.code == 1008
        stats = client.get("/v1/stats").json()
        assert stats["sessions_total"] == 0 and stats["errors"].get("forbidden") == 1


def test_the_servers_own_page_and_non_browser_clients_get_a_session():
    with serve_client(create_app(engine())) as client:
        for headers in ({"Origin": OWN}, {}):
            with client.websocket_connect("/v1/session", headers=headers) as ws:
                assert ws.receive_json()["type"] == "ready"


@pytest.mark.parametrize("path", ["/", "/healthz", "/v1/info", "/v1/samples"])
def test_a_request_naming_another_host_is_refused(path):
    with serve_client(create_app(engine()), host="evil.example") as client:
        response = client.get(path)
        assert response.status_code == 403 and "Host" in response.json()["detail"]
    with serve_client(create_app(engine())) as client:
        assert client.get(path).status_code == 200
        assert client.get(path, headers={"Host": "evil.example:8000"}).status_code == 403
        for lookalike in ("127.0.0.1.evil.example", "127.0.0.1.evil.example:8000", "localhost.evil.example", "127.0.0.10.nip.io"):
            assert client.get(path, headers={"Host": lookalike}).status_code == 403, lookalike
        assert client.get(path, headers={"Host": "localhost:8000"}).status_code == 200
        assert client.post("/v1/answer", json={"question": "Why?"}, headers={"Origin": "http://evil.example"}).status_code == 403


def test_the_flags_open_hosts_and_origins_on_purpose():
    app = create_app(engine(), bound="127.0.0.1", allowed_hosts=("lm.example",), allowed_origins=("http://app.example",))
    with serve_client(app, host="lm.example") as client:
        assert client.get("/healthz").status_code == 200
        with client.websocket_connect("/v1/session", headers={"Origin": "http://app.example"}) as ws:
            assert ws.receive_json()["type"] == "ready"
        with pytest.raises(WebSocketDisconnect):
            with client.websocket_connect("/v1/session", headers={"Origin": "http://evil.example"}):
                pass
    args = serve_main.parse_args(["--allowed_hosts", "a.example, b.example", "--allowed_origins", "*"])
    assert auth.split_list(args.allowed_hosts) == ("a.example", "b.example") and auth.split_list(args.allowed_origins) == ("*",)
    assert args.max_outage == 600 and serve_main.parse_args(["--max_outage", "5"]).max_outage == 5.0
    assert "selection" not in vars(args), "--selection (question selection) means nothing to a server"


def test_header_rules():
    assert auth.host_allowed("127.0.0.1:8000", "127.0.0.1") and auth.host_allowed("[::1]:8000", "127.0.0.1")
    assert auth.host_allowed("localhost", "127.0.0.1") and auth.host_allowed("10.0.0.5:80", "10.0.0.5")
    assert not auth.host_allowed("evil.example", "127.0.0.1") and not auth.host_allowed(None, "127.0.0.1")
    assert auth.host_allowed("anything.example", "0.0.0.0"), "bound to every interface (an API key is required there)"
    assert auth.origin_allowed(None, "127.0.0.1:8000") and auth.origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert not auth.origin_allowed("http://127.0.0.1:8000", "localhost:8000")
    assert not auth.origin_allowed("file://", "127.0.0.1:8000")
    assert auth.host_allowed("[::1]", "127.0.0.1") and not auth.host_allowed("[::1]x]:8000", "127.0.0.1")
    assert not auth.host_allowed("[::1].evil.example", "127.0.0.1")
    assert auth.host_allowed("anything.example", "::"), "bound to every IPv6 interface"
    assert auth.allowed_request({"host": "127.0.0.1:8000", "origin": "http://evil.example"}, "127.0.0.1") == (
        "Origin 'http://evil.example' is not this server's page (--allowed_origins opens it)")
    assert auth.split_list(None) == () and auth.split_list("") == () and auth.split_list(" a, ,b ") == ("a", "b")
    assert auth.bearer("Bearer  abc") == "abc" and auth.bearer("bearer abc ") == "abc"
    assert auth.host_allowed("evil.example", "127.0.0.1", ("*",)) and auth.host_allowed("any.example", "")
    assert auth.host_allowed("app.localhost:8000", "127.0.0.1") and not auth.host_allowed("app.localhost.evil", "127.0.0.1")
    assert auth.origin_allowed("http://evil.example", "127.0.0.1:8000", ("*",))
    assert auth.origin_allowed("http://app.example/", "x", ("http://app.example",))  # a trailing slash on either side
    assert auth.origin_allowed("http://app.example", "x", ("http://app.example/",))
    assert auth.origin_allowed("http://localhost:8000", "localhost:8000") and auth.origin_allowed("https://127.0.0.1:8000", "127.0.0.1:8000")
    assert auth.origin_allowed("HTTP://LocalHost:8000", "localhost:8000") and not auth.origin_allowed("http://xxxx", None)



def test_host_names_and_allowed_origins_are_compared_exactly():
    """A port is cut only when it is all digits after one colon or after ``[addr]``; an
    allowed origin matches up to a trailing slash and case, nothing else."""
    assert auth._hostname(" LocalHost:80 ") == "localhost" and auth._hostname("[::1]:80") == "::1"
    assert auth._hostname("[::1]") == "::1" and auth._hostname("::1") == "::1"
    for whole in ("[::1]x]", "[::1]x80", "[::1]:x80", "[::1]:", "localhost:abc", "localhost:", "a:1:2"):
        assert auth._hostname(whole) == whole
    assert not auth.origin_allowed("http://app.exampleX", "x", ("http://app.example",))
    assert not auth.origin_allowed("http://app.example", "x", ("http://app.exampleX",))
    assert auth.key_matches("k\u00e9y" * 4, "k\u00e9y" * 4) and not auth.key_matches("k\u00e9y" * 4, "key" * 4)

# --------------------------------------------------------------------------- an outage


def ask(ws, question: str = "The sky is blue. Why is the sky blue?") -> list[dict]:
    ws.send_json({"type": "start", "options": OPTIONS})
    ws.send_json({"type": "submit", "text": question})
    seen = []
    while not seen or seen[-1]["type"] != "done":
        seen.append(ws.receive_json())
    return seen


def test_an_outage_past_max_outage_fails_the_call_in_flight_and_the_server_recovers_by_itself(tmp_path):
    down = tmp_path / "down"
    with serve_client(create_app(engine(down))) as client:
        assert client.get("/healthz").json() == {"ok": True}
        down.touch()
        with client.websocket_connect("/v1/session") as ws:
            assert ws.receive_json()["type"] == "ready"
            start = time.monotonic()
            events = ask(ws)
            errors = [e for e in events if e["type"] == "error"]
            assert [e["code"] for e in errors] == ["backend_unavailable"], events
            assert "max_outage" in errors[0]["message"] and time.monotonic() - start < 3
            health = client.get("/healthz")
            assert health.status_code == 503 and "unavailable" in health.json()["reason"]
            down.unlink()
            time.sleep(0.2)  # the next probe is due
            assert client.get("/healthz").status_code == 200, "the health check probes the backend again"
            ws.send_json({"type": "reset"})
            assert ws.receive_json()["type"] == "reset"
            events = ask(ws)  # the same session goes on
            assert [e["answer"] for e in events if e["type"] == "final"] == ["Light scatters. The answer is (B)."]
            assert not [e for e in events if e["type"] == "error"]
        with client.websocket_connect("/v1/session") as ws:  # and a new session is answered
            assert ws.receive_json()["type"] == "ready"
            assert any(e["type"] == "final" and e["error"] is None for e in ask(ws))


def test_post_answer_during_an_outage_is_503_with_the_code(tmp_path):
    down = tmp_path / "down"
    down.touch()
    with serve_client(create_app(engine(down, max_outage=0.2))) as client:
        response = client.post("/v1/answer", json={"question": "Why is the sky blue?", "options": OPTIONS})
        assert response.status_code == 503 and response.json()["code"] == "backend_unavailable"
        down.unlink()
        assert client.post("/v1/answer", json={"question": "Why is the sky blue?", "options": OPTIONS}).status_code == 200


def test_post_answer_stops_its_calls_when_the_client_disconnects(live_server):
    import socket
    from urllib.parse import urlsplit

    from test_serve import BlockingModel, engine_for, wait_for

    model = BlockingModel()
    url = urlsplit(live_server(create_app(engine_for(model, baseline=False))))
    body = json.dumps({"question": "Only one sentence?", "options": OPTIONS}).encode()
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(b"POST /v1/answer HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (url.netloc.encode(), len(body), body))
        assert wait_for(model.started.is_set)
    assert wait_for(lambda: len(model.stopped) == len(model.calls) >= 1), "the running call was not stopped"
