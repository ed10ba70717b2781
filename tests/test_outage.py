"""The outage guard: infrastructure failures are waited out, shared by every call, on the
synchronous path and on the asynchronous one (``aio.acomplete``), within a budget.

Fake backends switch themselves off and on; delays are tenths of a second so the tests
take seconds.  The guard is checked to never turn an outage into a failed question
(``ModelError``), to stop with ``OutageExceeded`` once the budget is spent, and -- with
several calls in flight -- to pause them all for one recovery rather than failing them
one by one.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Sequence

import pytest
from conftest import missing

from live_mind.models import aio
from live_mind.models.base import BackendUnavailable, ChatRequest, Completion, ModelError, ModelWrapper, OutageExceeded
from live_mind.models.outage import AsyncOutageGuard, OutageGuard, guard, outage_delay

FAST = dict(first_delay=0.05, max_delay=0.2)


def req(text: str = "q") -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}])


class Switchable:
    """A backend that is away while ``down_until`` lies ahead; counts the calls it got."""

    name = "switchable"

    def __init__(self) -> None:
        self.down_until = 0.0
        self.calls = 0
        self.failed_calls = 0
        self.lock = threading.Lock()
        self.batch_decode = False

    def _answer(self, request: ChatRequest) -> Completion:
        with self.lock:
            self.calls += 1
            if time.monotonic() < self.down_until:
                self.failed_calls += 1
                raise BackendUnavailable("connection refused")
        text = request.messages[-1]["content"]
        if text == "bad":
            raise ModelError("prompt rejected")
        return Completion(text=f"echo {text}", prompt_tokens=1, completion_tokens=1, seconds=0.0)

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return [self._answer(r) for r in requests]


class AsyncSwitchable(Switchable):
    async def acomplete(self, request: ChatRequest) -> Completion:
        await asyncio.sleep(0.01)
        return self._answer(request)


def test_backoff_is_exponential_capped_and_jittered():
    rng = random.Random(1)
    assert [outage_delay(a, 0.5, 30, jitter=0) for a in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    waits = [outage_delay(3, 0.5, 30, rng=rng) for _ in range(200)]
    assert min(waits) >= 4 * 0.75 and max(waits) <= 4 * 1.25 and len(set(waits)) > 100


def test_an_outage_is_ridden_out_on_the_synchronous_path():
    backend = Switchable()
    model = guard(backend, max_outage=10, **FAST)
    statuses: list[str | None] = []
    model.on_status = statuses.append
    backend.down_until = time.monotonic() + 0.4
    [completion] = model.complete([req("a")])
    assert completion.text == "echo a"
    assert backend.failed_calls >= 2 and model.outages == 1 and 0.3 < model.waited < 2
    assert statuses[0].startswith("waiting for backend switchable") and statuses[-1] is None


def test_an_outage_longer_than_the_budget_raises_outage_exceeded_within_it():
    backend = Switchable()
    backend.down_until = time.monotonic() + 60
    model = guard(backend, max_outage=0.5, **FAST)
    start = time.monotonic()
    with pytest.raises(OutageExceeded, match="longer than --max_outage 0.5: connection refused"):
        model.complete([req()])
    assert 0.5 <= time.monotonic() - start < 1.5
    calls = backend.calls
    with pytest.raises(OutageExceeded):  # once spent, every call stops at once
        model.complete([req()])
    assert backend.calls == calls


def test_a_zero_budget_stops_at_the_first_infrastructure_failure():
    backend = Switchable()
    backend.down_until = time.monotonic() + 60
    with pytest.raises(OutageExceeded):
        guard(backend, max_outage=0).complete([req()])
    assert backend.calls == 1


def test_question_level_errors_pass_through_unretried():
    backend = Switchable()
    model = guard(backend, max_outage=10, **FAST)
    with pytest.raises(ModelError, match="prompt rejected") as info:
        model.complete([req("bad")])
    assert not isinstance(info.value, BackendUnavailable) and backend.calls == 1


def test_the_guard_is_a_model_wrapper_and_changes_nothing_after_load():
    backend = Switchable()
    model = guard(backend, max_outage=10)
    assert type(model) is OutageGuard and isinstance(model, ModelWrapper) and model.name == "switchable"
    model.batch_decode = True  # the guard's own attribute: nothing reaches the loaded backend
    assert backend.batch_decode is False
    assert not aio.native_async(model), "a synchronous backend keeps the serializer path"
    assert guard(model) is model
    assert type(guard(AsyncSwitchable())) is AsyncOutageGuard


def test_concurrent_calls_through_the_serializer_all_wait_for_one_recovery():
    """Several questions in flight on a synchronous backend (``aio.acomplete`` -> the
    per-model serializer thread -> the guard): none fails, one shared outage."""
    backend = Switchable()
    model = guard(backend, max_outage=10, **FAST)

    async def main() -> list[Completion]:
        backend.down_until = time.monotonic() + 0.4
        return await asyncio.gather(*(aio.acomplete(model, req(f"q{i}")) for i in range(6)))

    completions = asyncio.run(main())
    assert [c.text for c in completions] == [f"echo q{i}" for i in range(6)]
    assert model.outages == 1


def test_concurrent_native_async_calls_pause_together_and_resume_together():
    """Native ``acomplete``: the calls in flight when the backend goes away and the ones
    started during the outage all wait for the same probes; none fails, and they go on
    once the first probe gets through."""
    backend = AsyncSwitchable()
    model = guard(backend, max_outage=10, **FAST)
    assert aio.native_async(model)
    finished: dict[int, float] = {}

    async def one(i: int) -> Completion:
        await asyncio.sleep(0.02 * i)
        completion = await aio.acomplete(model, req(f"q{i}"))
        finished[i] = time.monotonic()
        return completion

    async def main() -> list[Completion]:
        backend.down_until = time.monotonic() + 0.5
        return await asyncio.gather(*(one(i) for i in range(8)))

    start = time.monotonic()
    completions = asyncio.run(main())
    assert [c.text for c in completions] == [f"echo q{i}" for i in range(8)]
    assert model.outages == 1, "one outage, shared by every call"
    assert min(finished.values()) - start >= 0.5, "no call got through while the backend was away"
    assert max(finished.values()) - min(finished.values()) < 0.3, "all resumed with the same recovery"


def test_native_async_outage_past_the_budget_stops_every_call():
    backend = AsyncSwitchable()
    backend.down_until = time.monotonic() + 60
    model = guard(backend, max_outage=0.4, **FAST)

    async def main() -> list[object]:
        return await asyncio.gather(*(aio.acomplete(model, req(f"q{i}")) for i in range(5)), return_exceptions=True)

    start = time.monotonic()
    results = asyncio.run(main())
    assert all(isinstance(r, OutageExceeded) for r in results)
    assert time.monotonic() - start < 1.5


# --------------------------------------------------------------------------- which failures are infrastructure


def test_vllm_engine_death_and_out_of_memory_are_infrastructure_failures():
    from live_mind.models.vllm.async_engine import engine_failure

    class EngineDeadError(Exception):  # vLLM's class is matched by name (see fixtures/fake_vllm_run.py for the real one)
        pass

    class OutOfMemoryError(RuntimeError):  # torch.OutOfMemoryError
        pass

    assert engine_failure(EngineDeadError("EngineCore encountered an issue"))
    assert engine_failure(OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert engine_failure(RuntimeError("CUDA error: out of memory"))
    assert engine_failure(MemoryError())
    assert not engine_failure(ValueError("prompt is longer than max_model_len"))
    assert not engine_failure(RuntimeError("some request failed"))


def test_the_real_vllm_engine_dead_error_is_recognised():
    """vLLM's own class, loaded from its source file as the fault test's launcher does
    (importing all of vLLM takes many seconds)."""
    import importlib.util
    import sys
    from pathlib import Path

    if importlib.util.find_spec("vllm") is None:
        missing("vllm is not installed")
    fixtures = Path(__file__).resolve().parent / "fixtures"
    spec = importlib.util.spec_from_file_location("fake_vllm_run", fixtures / "fake_vllm_run.py")
    launcher = importlib.util.module_from_spec(spec)
    saved = {k: v for k, v in sys.modules.items() if k == "vllm" or k.startswith("vllm.") or k == "fake_vllm_run"}
    try:
        sys.modules["fake_vllm_run"] = launcher
        spec.loader.exec_module(launcher)
        sys.modules["vllm"] = launcher.fake_vllm(lambda: None)
        error = launcher.real_engine_dead_error()
    finally:
        for key in [k for k in sys.modules if k == "vllm" or k.startswith("vllm.") or k == "fake_vllm_run"]:
            del sys.modules[key]
        sys.modules.update(saved)
    from live_mind.models.vllm.async_engine import engine_failure

    assert error.__name__ == "EngineDeadError" and error.__module__ == "vllm.v1.engine.exceptions"
    assert engine_failure(error())


def test_llamacpp_allocation_failures_are_infrastructure_failures():
    from live_mind.models.llamacpp import out_of_memory

    assert out_of_memory("ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer")
    assert out_of_memory("CUDA error: out of memory")
    assert not out_of_memory("Requested tokens (5000) exceed context window of 4096")
