"""Streamed text is never shown twice, backend by backend: a call that streamed part of
its reply and then lost its backend is retried only after the caller was told the
answer restarts (``ChatRequest.on_restart``), or not at all (``StreamInterrupted``).

Each streaming backend's real generation path runs over a stand-in that fails after the
first piece on its first call: llama.cpp in process (an allocation failure), an
OpenAI-compatible server (the connection drops), vLLM's async engine (its engine dies:
test_vllm_engine_death.py) and the live session on top (``answer_restart`` events).
The transformers backend raises no ``BackendUnavailable`` (its failures are the
question's), so the guard never retries its calls: its last test shows that.
"""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
from conftest import require_module

from live_mind.models.base import ChatRequest, StreamInterrupted
from live_mind.models.llamacpp import LlamaCppChatModel
from live_mind.models.outage import guard

FAST = dict(max_outage=10, first_delay=0.01, max_delay=0.02)


def restartable(shown: list[str]) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": "q"}], on_token=shown.append,
                       on_restart=lambda why: shown.append("<restart>"))


class FlakyLlama:
    """``create_completion(stream=True)``; the first stream fails after one piece."""

    def __init__(self) -> None:
        self.calls, self._input_ids = 0, []

    def create_completion(self, tokens, stream=False, **options):
        self.calls += 1
        return self._chunks(self.calls == 1)

    def _chunks(self, fail: bool):
        for i, word in enumerate(["Light ", "scatters."]):
            if fail and i == 1:
                raise RuntimeError("ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer")
            yield {"choices": [{"text": word, "finish_reason": "stop" if i == 1 else None}]}

    def tokenize(self, data, add_bos=False, special=True):
        return data.split()


def llama_model() -> LlamaCppChatModel:
    model = object.__new__(LlamaCppChatModel)  # no llama_cpp needed: only the generation path runs
    model.llm, model.n_ctx, model.heal_prefix, model.name = FlakyLlama(), 4096, True, "fake-llama"
    model.prompt_tokens = lambda request: [1, 2]
    return model


def openai_model():
    require_module("openai", "openai is not installed (pip install '.[openai]')")
    import httpx
    import openai

    from live_mind.models.openai_compat import OpenAIChatModel

    model = OpenAIChatModel("http://127.0.0.1:9/v1", "m", max_retries=3, backoff_base=0.01, backoff_max=0.01)
    calls = []

    def chunks(fail: bool):
        for i, text in enumerate(["Light ", "scatters."]):
            if fail and i == 1:
                raise openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions"))
            yield NS(choices=[NS(delta=NS(content=text), text=None, finish_reason="stop" if i else None)], usage=None)

    def create(**kwargs):
        calls.append(kwargs)
        return chunks(len(calls) == 1)

    model.client = NS(chat=NS(completions=NS(create=create)))
    model.sent = calls
    return model


@pytest.mark.parametrize("make", [llama_model, openai_model], ids=["llamacpp", "openai"])
def test_a_streamed_then_failed_call_says_it_restarts(make):
    model = make()
    shown: list[str] = []
    [completion] = guard(model, **FAST).complete([restartable(shown)])
    assert shown == ["Light ", "<restart>", "Light ", "scatters."] and completion.text == "Light scatters."


@pytest.mark.parametrize("make", [llama_model, openai_model], ids=["llamacpp", "openai"])
def test_a_streamed_then_failed_call_is_not_resent_without_a_way_to_say_so(make):
    model = make()
    shown: list[str] = []
    with pytest.raises(StreamInterrupted):
        guard(model, **FAST).complete([ChatRequest([{"role": "user", "content": "q"}], on_token=shown.append)])
    assert shown == ["Light "]
    sent = model.llm.calls if isinstance(model, LlamaCppChatModel) else len(model.sent)
    assert sent == 1, "the backend's own retries did not resend it either"


def test_the_live_session_shows_the_restart_between_the_two_streams():
    from live_mind.formats import make_format
    from live_mind.live import LiveSession
    from live_mind.methods.livemind import LiveMindController

    model = llama_model()
    controller = LiveMindController(guard(model, **FAST), prompt_format=make_format("UA-SPI"), parse="lenient")
    kinds: list[tuple[str, str]] = []
    session = LiveSession(controller, "", 0, on_event=lambda ev: kinds.append((ev.kind, ev.text)), stream=True)
    result = session.complete("Why is the sky blue?")
    final = [k for k in kinds if k[0] in ("token", "answer_restart", "final")]
    assert [k for k, _ in final] == ["token", "answer_restart", "token", "token", "final"], final
    assert result.response.endswith("Light scatters.") and final[-1][1] == ""


def test_a_backend_whose_failures_are_the_questions_is_never_retried():
    """The transformers backend raises its own errors (not ``BackendUnavailable``) when a
    generation fails: the guard passes them on at once, so nothing is streamed twice."""
    class Failing:
        name, calls = "hf-like", 0

        def complete(self, requests):
            self.calls += 1
            requests[0].on_token("Light ")
            raise RuntimeError("generation failed")

    backend, shown = Failing(), []
    with pytest.raises(RuntimeError):
        guard(backend, **FAST).complete([restartable(shown)])
    assert backend.calls == 1 and shown == ["Light "]
