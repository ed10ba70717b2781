"""The asynchronous path of the chat-model protocol (live_mind/models/aio.py)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from live_mind.models.aio import Serializer, acomplete, native_async
from live_mind.models.base import ChatRequest, Completion, ModelError


class Recorder:
    """A synchronous model that records the batches it receives, one at a time."""

    name = "recorder"

    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.fail_on = fail_on

    def complete(self, requests):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            texts = [r.messages[0]["content"] for r in requests]
            self.batches.append(texts)
            if self.fail_on in texts:
                raise ModelError(f"bad request {self.fail_on}")
            return [Completion(text=t.upper(), prompt_tokens=len(t), completion_tokens=1, seconds=0.0) for t in texts]
        finally:
            with self.lock:
                self.active -= 1


def _request(text: str) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}])


def test_sync_model_runs_one_call_at_a_time_in_order():
    model = Recorder()

    async def main():
        return await asyncio.gather(*(acomplete(model, _request(str(i))) for i in range(6)))

    results = asyncio.run(main())
    assert [c.text for c in results] == [str(i) for i in range(6)]
    assert model.max_active == 1
    assert [t for batch in model.batches for t in batch] == [str(i) for i in range(6)]


def test_batched_fallback_retries_a_failed_batch_per_request():
    model = Recorder(fail_on="b")
    serial = Serializer(model, max_batch=8)
    futures = [serial.submit(_request(t)) for t in "abc"]
    assert futures[0].result(5).text == "A"
    with pytest.raises(ModelError, match="bad request b"):
        futures[1].result(5)
    assert futures[2].result(5).text == "C"


def test_native_async_model_is_awaited_directly():
    class Native:
        name = "native"

        async def acomplete(self, request):
            return Completion(text="native", prompt_tokens=1, completion_tokens=1, seconds=0.0)

        def complete(self, requests):  # pragma: no cover - must not be used
            raise AssertionError("the synchronous path was used")

    assert native_async(Native()) and not native_async(Recorder())
    assert asyncio.run(acomplete(Native(), _request("x"))).text == "native"


def test_complete_blocking_from_threads_shares_the_path():
    from live_mind.models.aio import complete_blocking, serializer
    from live_mind.models.scripted import ScriptedModel

    class Native:
        name = "native"
        loops: set = set()

        async def acomplete(self, request):
            Native.loops.add(id(asyncio.get_running_loop()))
            return Completion(text="native", prompt_tokens=1, completion_tokens=1, seconds=0.0)

    model = Recorder()
    out: list[str] = []
    threads = [threading.Thread(target=lambda t=t: out.append(complete_blocking(model, _request(t)).text)) for t in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(out) == ["A", "B", "C", "D"] and model.max_active == 1  # one call at a time
    native = Native()
    assert [complete_blocking(native, _request("x")).text for _ in range(2)] == ["native", "native"]
    assert len(Native.loops) == 1  # one shared background loop
    scripted = ScriptedModel()  # a dataclass (unhashable) model gets its serializer too
    assert serializer(scripted) is serializer(scripted) and complete_blocking(scripted, _request("q")).text
