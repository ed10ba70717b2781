"""Streaming and stopping through the chat-model protocol, without model weights.

The llama.cpp backend's streamed path runs over a stand-in ``Llama`` whose
``create_completion(stream=True)`` yields chunks as llama-cpp-python documents them
(``{"choices": [{"text", "finish_reason"}]}``); the live session runs on the scripted model.
"""

from __future__ import annotations

import threading

from live_mind.models.base import ChatRequest
from live_mind.models.llamacpp import LlamaCppChatModel


class FakeLlama:
    """``create_completion`` in both modes; the streamed one yields one chunk per word."""

    def __init__(self, words, stop_after=None, stop=None):
        self.words, self.stop_after, self.stop, self.closed = words, stop_after, stop, False

    def create_completion(self, tokens, stream=False, **options):
        assert options["temperature"] == 0.0 and options["grammar"] is None
        if not stream:
            return {"choices": [{"text": "".join(self.words), "finish_reason": "stop"}],
                    "usage": {"completion_tokens": len(self.words)}}
        return self._chunks()

    def _chunks(self):
        try:
            for i, word in enumerate(self.words):
                if self.stop is not None and i == self.stop_after:
                    self.stop.set()
                last = i == len(self.words) - 1
                yield {"choices": [{"text": word, "finish_reason": "stop" if last else None}]}
        finally:
            self.closed = True

    def tokenize(self, data, add_bos=False, special=True):
        return data.split()


def _model(llm):
    model = object.__new__(LlamaCppChatModel)  # no llama_cpp needed: only the generation path runs
    model.llm, model.n_ctx, model.heal_prefix, model.name = llm, 4096, True, "fake"
    return model


def test_llamacpp_streams_pieces_that_join_to_the_text():
    model = _model(FakeLlama(["action ", "inference. ", "sky"]))
    pieces: list[str] = []
    request = ChatRequest([{"role": "user", "content": "q"}], on_token=pieces.append)
    text, tokens, finish = model._generate([1, 2], request, "", 16)
    assert pieces == ["action ", "inference. ", "sky"] and text == "".join(pieces)
    assert tokens == 3 and finish == "stop" and model.llm.closed


def test_llamacpp_stop_signal_closes_the_stream():
    stop = threading.Event()
    llm = FakeLlama(["a ", "b ", "c ", "d"], stop_after=2, stop=stop)
    model = _model(llm)
    text, tokens, finish = model._generate([1], ChatRequest([{"role": "user", "content": "q"}], stop=stop), "", 16)
    assert text == "a b " and finish == "cancelled" and tokens == 2 and llm.closed


def test_llamacpp_without_callbacks_keeps_the_plain_call():
    model = _model(FakeLlama(["x ", "y"]))
    assert model._generate([1], ChatRequest([{"role": "user", "content": "q"}]), "", 16) == ("x y", 2, "stop")
