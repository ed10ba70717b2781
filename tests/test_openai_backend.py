"""OpenAI-compatible backend against a local stub server.

The stub (``http.server`` on 127.0.0.1, random port) answers the chat and completions
endpoints, fails with scripted status codes first, and records every request, the
number in flight at once, and the headers -- enough to check retry counts, backoff
delays, concurrency, priming and usage mapping without any network.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import require_module

require_module("openai", "openai is not installed (pip install '.[openai]')")

from live_mind.models.base import (  # noqa: E402
    BackendUnavailable,
    ChatRequest,
    ContextLengthExceeded,
    ModelError,
    UnsupportedFeature,
)
from live_mind.models.openai_compat import OpenAIChatModel  # noqa: E402
from live_mind.models.openai_errors import backoff_delay, infrastructure_failure  # noqa: E402


class Stub:
    """Scripted OpenAI-compatible server state."""

    def __init__(self, failures=(), delay=0.0, retry_after=None, error_message="boom", cached=None):
        self.failures = list(failures)
        self.delay = delay
        self.retry_after = retry_after
        self.error_message = error_message
        self.cached = cached
        self.lock = threading.Lock()
        self.requests: list[tuple[str, dict, dict]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _json(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stub.lock:
                    stub.requests.append((self.path, body, {k.lower(): v for k, v in self.headers.items()}))
                    status = stub.failures.pop(0) if stub.failures else 200
                if status != 200:
                    headers = {"Retry-After": str(stub.retry_after)} if stub.retry_after is not None else {}
                    self._json(status, {"error": {"message": stub.error_message, "type": "err", "code": status}}, headers)
                    return
                with stub.lock:
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                time.sleep(stub.delay)
                with stub.lock:
                    stub.in_flight -= 1
                usage = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
                if stub.cached is not None:
                    usage["prompt_tokens_details"] = {"cached_tokens": stub.cached}
                if self.path.endswith("/completions") and "chat" not in self.path:
                    choice = {"index": 0, "text": " reply to prompt", "finish_reason": "length", "logprobs": None}
                    self._json(200, {"id": "c", "object": "text_completion", "created": 0, "model": body["model"],
                                     "choices": [choice], "usage": usage})
                    return
                last = body["messages"][-1]["content"]
                choice = {"index": 0, "message": {"role": "assistant", "content": f"echo {last}"},
                          "finish_reason": "stop"}
                self._json(200, {"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                                 "choices": [choice], "usage": usage})

        return Handler


@pytest.fixture
def serve():
    servers = []

    def start(stub: Stub) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), stub.handler())
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def make(url, sleeps=None, **kwargs):
    kwargs.setdefault("backoff_base", 0.5)
    kwargs.setdefault("timeout", 10.0)
    return OpenAIChatModel(url, "stub-model", sleep=(sleeps.append if sleeps is not None else (lambda s: None)), **kwargs)


def req(text="hello", **kwargs):
    return ChatRequest(messages=[{"role": "system", "content": "S"}, {"role": "user", "content": text}], **kwargs)


def test_retries_5xx_then_succeeds_with_exponential_backoff(serve):
    stub = Stub(failures=[500, 502, 503])
    sleeps: list[float] = []
    [completion] = make(serve(stub), sleeps).complete([req()])
    assert completion.text == "echo hello"
    assert len(stub.requests) == 4 and completion.extra["retries"] == 3
    assert sleeps == [0.5, 1.0, 2.0]
    assert (completion.prompt_tokens, completion.completion_tokens, completion.cached_tokens) == (11, 3, 0)


def test_429_honours_retry_after(serve):
    stub = Stub(failures=[429, 429], retry_after=0.25)
    sleeps: list[float] = []
    [completion] = make(serve(stub), sleeps).complete([req()])
    assert sleeps == [0.25, 0.25] and completion.extra["retries"] == 2


def test_gives_up_after_max_retries_as_an_infrastructure_failure(serve):
    """Spent retries on a 5xx mean the server is away: BackendUnavailable, which the
    outage guard waits out -- never a ModelError recorded against the question."""
    stub = Stub(failures=[500] * 10)
    sleeps: list[float] = []
    with pytest.raises(BackendUnavailable, match="after 4 attempts") as info:
        make(serve(stub), sleeps, max_retries=3).complete([req()])
    assert len(stub.requests) == 4 and sleeps == [0.5, 1.0, 2.0]
    assert "\n" not in str(info.value)


def test_infrastructure_failures_are_told_from_rejected_requests():
    import httpx
    import openai

    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")

    def status(code: int) -> openai.APIStatusError:
        return openai.APIStatusError("x", response=httpx.Response(code, request=request), body=None)

    assert infrastructure_failure(openai.APIConnectionError(request=request))
    assert infrastructure_failure(openai.APITimeoutError(request=request))
    for code in (429, 500, 502, 503, 504):
        assert infrastructure_failure(status(code)), code
    for code in (400, 401, 404, 413, 422):
        assert not infrastructure_failure(status(code)), code
    assert not infrastructure_failure(ValueError("no"))
    assert not issubclass(BackendUnavailable, ModelError), "never recorded as a failed question"


def test_a_rejected_request_stays_a_question_level_error(serve):
    stub = Stub(failures=[422], error_message="empty prompt")
    with pytest.raises(ModelError, match="empty prompt") as info:
        make(serve(stub)).complete([req()])
    assert not isinstance(info.value, BackendUnavailable)


def test_backoff_is_capped():
    assert backoff_delay(0, 0.5, 30) == 0.5
    assert backoff_delay(3, 0.5, 30) == 4.0
    assert backoff_delay(20, 0.5, 30) == 30
    assert backoff_delay(0, 0.5, 30, retry_after=100) == 30


def test_client_errors_are_not_retried(serve):
    stub = Stub(failures=[400], error_message="bad request")
    sleeps: list[float] = []
    with pytest.raises(ModelError, match="bad request"):
        make(serve(stub), sleeps).complete([req()])
    assert len(stub.requests) == 1 and sleeps == []


def test_context_length_error(serve):
    stub = Stub(failures=[400], error_message="This model's maximum context length is 2048 tokens")
    with pytest.raises(ContextLengthExceeded):
        make(serve(stub)).complete([req()])


def test_connection_errors_are_retried():
    with socket.socket() as sock:  # a free port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    with pytest.raises(BackendUnavailable, match="after 3 attempts"):
        make(f"http://127.0.0.1:{port}/v1", sleeps, max_retries=2, timeout=2.0).complete([req()])
    assert sleeps == [0.5, 1.0]


def test_timeouts_are_retried(serve):
    stub = Stub(delay=1.5)
    sleeps: list[float] = []
    with pytest.raises(BackendUnavailable, match="after 2 attempts"):
        make(serve(stub), sleeps, max_retries=1, timeout=0.3).complete([req()])
    assert len(stub.requests) == 2 and sleeps == [0.5]


def test_batch_is_sent_concurrently_and_in_order(serve):
    stub = Stub(delay=0.4)
    model = make(serve(stub), max_concurrency=3)
    requests = [req(f"q{i}") for i in range(6)]
    start = time.perf_counter()
    completions = model.complete(requests)
    wall = time.perf_counter() - start
    assert [c.text for c in completions] == [f"echo q{i}" for i in range(6)]
    assert stub.max_in_flight == 3
    assert wall < 6 * 0.4 * 0.75  # two waves of three, not six in a row
    assert len({c.seconds for c in completions}) == 1 and completions[0].seconds <= wall


def test_concurrency_one_is_sequential(serve):
    stub = Stub(delay=0.1)
    make(serve(stub), max_concurrency=1).complete([req(f"q{i}") for i in range(3)])
    assert stub.max_in_flight == 1


def test_cached_tokens_from_usage_details(serve):
    stub = Stub(cached=7)
    [completion] = make(serve(stub)).complete([req()])
    assert completion.cached_tokens == 7


def test_greedy_and_max_tokens_are_sent(serve):
    stub = Stub()
    make(serve(stub), stop=["\n\n"]).complete([req(max_new_tokens=33)])
    path, body, _ = stub.requests[0]
    assert path == "/v1/chat/completions"
    assert body["temperature"] == 0.0 and body["max_tokens"] == 33 and body["stop"] == ["\n\n"]


def test_priming_none_refuses_a_prefix(serve):
    stub = Stub()
    with pytest.raises(UnsupportedFeature, match="prime"):
        make(serve(stub)).complete([req(assistant_prefix="action ")])
    assert stub.requests == []


def test_priming_continue_sends_the_final_assistant_message(serve):
    stub = Stub()
    [completion] = make(serve(stub), priming="continue").complete([req(assistant_prefix="action ")])
    _, body, _ = stub.requests[0]
    assert body["messages"][-1] == {"role": "assistant", "content": "action "}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert completion.text == "echo action "


class TemplateTokenizer:
    """Minimal stand-in: a chat template that writes a BOS token, which the tokenizer
    also adds to plain text (as Llama-3's does) unless ``adds_bos`` is false."""

    bos_token = "<s>"
    bos_token_id = 1

    def __init__(self, adds_bos: bool = True):
        self.adds_bos = adds_bos

    def __call__(self, text):
        return {"input_ids": ([1] if self.adds_bos else []) + [5] * len(text.split())}

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        text = "<s>" + "".join(f"[{m['role']}]{m['content']}" for m in messages)
        return text + ("[assistant]" if add_generation_prompt else "")


def test_priming_completions_renders_locally(serve):
    stub = Stub(cached=4)
    model = make(serve(stub), priming="completions", tokenizer=TemplateTokenizer())
    [completion] = model.complete([req(assistant_prefix="action ")])
    path, body, _ = stub.requests[0]
    assert path == "/v1/completions"
    assert body["prompt"] == "[system]S[user]hello[assistant]action "
    assert completion.text == " reply to prompt" and completion.finish_reason == "length"
    assert completion.cached_tokens == 4
    # A tokenizer that never adds BOS (SmolLM2's) keeps the template's first token.
    make(serve(stub), priming="completions", tokenizer=TemplateTokenizer(adds_bos=False)).complete([req()])
    assert stub.requests[1][1]["prompt"] == "<s>[system]S[user]hello[assistant]"


def test_healing_sends_a_grammar_and_trims_the_held_space(serve):
    stub = Stub()
    model = make(serve(stub), priming="completions", tokenizer=TemplateTokenizer(), heal_prefix=True,
                 choice_mode="grammar")
    [completion] = model.complete([req(assistant_prefix="action ")])
    body = stub.requests[0][1]
    assert body["prompt"].endswith("[assistant]action") and body["grammar"] == 'root ::= " " .*'
    assert completion.text == "reply to prompt"
    model.complete([req(assistant_prefix="action ", choices=["A", "B"])])
    assert stub.requests[1][1]["prompt"].endswith("action ") and stub.requests[1][1]["grammar"] == 'root ::= "A" | "B"'


def test_choices_modes(serve):
    stub = Stub()
    url = serve(stub)
    with pytest.raises(UnsupportedFeature):
        make(url).complete([req(choices=["A", "B"])])
    make(url, choice_mode="grammar").complete([req(choices=["A", "B"])])
    make(url, choice_mode="guided_choice").complete([req(choices=["A", "B"])])
    assert stub.requests[0][1]["grammar"] == 'root ::= "A" | "B"'
    assert stub.requests[1][1]["guided_choice"] == ["A", "B"]


def test_api_key_from_environment(serve, monkeypatch):
    stub = Stub()
    monkeypatch.setenv("STUB_KEY_FOR_TEST", "sk-test-123")
    make(serve(stub), api_key_env="STUB_KEY_FOR_TEST").complete([req()])
    assert stub.requests[0][2]["authorization"] == "Bearer sk-test-123"
    monkeypatch.delenv("STUB_KEY_FOR_TEST")
    with pytest.raises(ModelError, match="STUB_KEY_FOR_TEST"):
        make("http://127.0.0.1:9/v1", api_key_env="STUB_KEY_FOR_TEST")


def test_bad_options():
    with pytest.raises(ValueError, match="priming"):
        make("http://127.0.0.1:9/v1", priming="maybe")
    with pytest.raises(ValueError, match="tokenizer"):
        make("http://127.0.0.1:9/v1", priming="completions")


# ---------------------------------------------------------------- streaming and stopping


class _Chunks:
    """A streamed response: chat-style chunks, then a usage chunk; records ``close``."""

    def __init__(self, texts, usage=True, on_chunk=None):
        from types import SimpleNamespace as NS

        self.items = [NS(choices=[NS(delta=NS(content=t), text=None, finish_reason=None)], usage=None) for t in texts]
        self.items[-1].choices[0].finish_reason = "stop"
        if usage:
            self.items.append(NS(choices=[], usage=NS(prompt_tokens=7, completion_tokens=len(texts))))
        self.on_chunk, self.closed = on_chunk, False

    def __iter__(self):
        for i, item in enumerate(self.items):
            if self.on_chunk:
                self.on_chunk(i)
            yield item

    def close(self):
        self.closed = True


def _streaming_model(chunks):
    from types import SimpleNamespace as NS

    model = OpenAIChatModel("http://127.0.0.1:9/v1", "m", max_retries=0)
    seen = {}

    def create(**kwargs):
        seen.update(kwargs)
        return chunks

    model.client = NS(chat=NS(completions=NS(create=create)))
    return model, seen


def test_streaming_sends_stream_and_passes_pieces_on():
    chunks = _Chunks(["Light ", "scatters."])
    model, seen = _streaming_model(chunks)
    pieces: list[str] = []
    [c] = model.complete([ChatRequest([{"role": "user", "content": "q"}], on_token=pieces.append)])
    assert seen["stream"] is True and pieces == ["Light ", "scatters."] and c.text == "Light scatters."
    assert c.prompt_tokens == 7 and c.completion_tokens == 2 and "usage_estimated" not in c.extra and chunks.closed


def test_stop_signal_closes_the_stream():
    stop = threading.Event()
    chunks = _Chunks(["a ", "b ", "c ", "d"], usage=False, on_chunk=lambda i: stop.set() if i == 2 else None)
    model, _ = _streaming_model(chunks)
    [c] = model.complete([ChatRequest([{"role": "user", "content": "q"}], stop=stop)])
    assert c.text == "a b " and c.finish_reason == "cancelled" and chunks.closed
    assert c.completion_tokens == 2 and c.extra["usage_estimated"] is True


# ------------------------------------------------------------------ the async path (AsyncOpenAI)


def test_async_path_keeps_max_concurrency_in_flight_and_retries(serve):
    import asyncio

    from live_mind.models.aio import acomplete, native_async

    stub = Stub(delay=0.3, failures=[503])
    model = make(serve(stub), max_concurrency=3, backoff_base=0.01)
    assert native_async(model)

    async def main():
        return await asyncio.gather(*(acomplete(model, req(f"q{i}")) for i in range(6)))

    done = asyncio.run(main())
    assert [c.text for c in done] == [f"echo q{i}" for i in range(6)]
    assert stub.max_in_flight == 3 and sum(c.extra["retries"] for c in done) == 1
    assert model.prompt_ids(req("q")) is None and not model.reuses_prefixes  # no local tokenizer: the engine's count is kept


def test_async_path_classifies_errors_as_the_sync_path(serve):
    import asyncio

    model = make(serve(Stub(failures=[400], error_message="maximum context length exceeded")))
    with pytest.raises(ContextLengthExceeded):
        asyncio.run(model.acomplete(req()))
    with pytest.raises(BackendUnavailable, match="after 2 attempts"):  # a server still away: not the question's fault
        asyncio.run(make(serve(Stub(failures=[500] * 5)), max_retries=1, backoff_base=0.01).acomplete(req()))
