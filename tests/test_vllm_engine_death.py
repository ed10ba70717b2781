"""vLLM engine death on the async path (``AsyncLLM``: ``--concurrency`` and the server),
with a fake engine: the one rule (``vllm.async_engine.engine_died``) marks the engine dead even
when the error reached the backend already wrapped, and the next call builds a fresh
engine; a reply that streamed text before the engine died is never shown twice.

The engine is a stand-in (loading vLLM takes minutes); its error is a class named as
vLLM's ``EngineDeadError``, matched by name as for the real one (test_outage.py checks
the real class).  ``VLLMChatModel`` is the real backend class, built without loading.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from live_mind.models.base import BackendUnavailable, ChatRequest, ModelError
from live_mind.models.outage import guard
from live_mind.models.vllm.async_engine import engine_died
from live_mind.models.vllm.model import VLLMChatModel
from live_mind.models.vllm.watchdog import unblock_when_dead


class EngineDeadError(Exception):
    """Named as vLLM's (``vllm.v1.engine.exceptions.EngineDeadError``)."""


@dataclass
class Sample:
    text: str
    token_ids: list
    finish_reason: str | None = None
    stop_reason: object = None


@dataclass
class Output:
    request_id: str
    prompt_token_ids: list
    outputs: list
    finished: bool = False
    num_cached_tokens: int = 0


@dataclass
class FakeAsyncLLM:
    """Streams ``Answer text`` in two steps; ``die_after`` steps (None: never) it dies."""

    die_after: int | None = None
    dead: bool = False

    async def generate(self, prompt, params, request_id):
        for step, text in enumerate(["Answer", "Answer text"]):
            if self.dead or (self.die_after is not None and step == self.die_after):
                self.dead = True
                raise EngineDeadError("EngineCore encountered an issue. See stack trace for the root cause.")
            yield Output(request_id, prompt["prompt_token_ids"], [Sample(text, list(range(step + 1)), "stop" if step else None)],
                         finished=step == 1)

    async def abort(self, request_id):
        pass


@dataclass
class FakeThread:
    """``vllm.async_engine.EngineThread``: each coroutine runs on a loop of its own thread."""

    engine: FakeAsyncLLM
    started: list = field(default_factory=list)

    def submit(self, coroutine) -> Future:
        with ThreadPoolExecutor(1) as pool:  # the engine's own loop, on its own thread
            return pool.submit(asyncio.run, coroutine)


def async_model(die_after: int | None) -> tuple[VLLMChatModel, list[FakeThread]]:
    model = VLLMChatModel.__new__(VLLMChatModel)
    built: list[FakeThread] = []

    def start_engine() -> None:  # a fresh engine that stays up
        built.append(FakeThread(FakeAsyncLLM()))
        model.engine = built[-1]

    model.name, model.engine_dead, model.llm, model.sessions = "fake-vllm", False, None, None
    model.native_async = True  # built with async_engine=True: acomplete runs on the async engine
    model.engine = FakeThread(FakeAsyncLLM(die_after))
    model._start_engine = start_engine
    model._checked = lambda request: ([1, 2, 3], "")
    model._sampling_params = lambda request, held: None
    return model, built


def test_one_rule_sees_an_engine_death_through_the_wrappers():
    dead = EngineDeadError("gone")
    wrapped = BackendUnavailable("vLLM engine failed")
    wrapped.__cause__ = dead
    outer = ModelError("vLLM streaming session failed")
    outer.__cause__ = wrapped
    assert engine_died(dead) and engine_died(wrapped) and engine_died(outer)
    assert not engine_died(ModelError("prompt rejected")) and not engine_died(None)


def test_an_async_engine_that_died_is_rebuilt_on_the_next_call():
    model, built = async_model(die_after=0)
    request = ChatRequest([{"role": "user", "content": "q"}])
    with pytest.raises(BackendUnavailable, match="EngineDeadError"):
        asyncio.run(model.acomplete(request))
    assert model.engine_dead, "the wrapped EngineDeadError marks the engine dead"
    completion = asyncio.run(model.acomplete(request))
    assert completion.text == "Answer text" and len(built) == 1 and not model.engine_dead


def test_through_the_guard_a_dead_async_engine_costs_one_retry_not_the_outage_budget():
    model, built = async_model(die_after=0)
    guarded = guard(model, max_outage=5, first_delay=0.01, max_delay=0.02)
    completion = asyncio.run(guarded.acomplete(ChatRequest([{"role": "user", "content": "q"}])))
    assert completion.text == "Answer text" and len(built) == 1 and guarded.outages == 1


def test_a_reply_streamed_before_the_engine_died_is_announced_as_restarting():
    model, built = async_model(die_after=1)  # dies after streaming "Answer"
    guarded = guard(model, max_outage=5, first_delay=0.01, max_delay=0.02)
    shown: list[str] = []
    request = ChatRequest([{"role": "user", "content": "q"}], on_token=shown.append,
                          on_restart=lambda why: shown.append("<restart>"))
    completion = asyncio.run(guarded.acomplete(request))
    assert shown == ["Answer", "<restart>", "Answer", " text"] and completion.text == "Answer text"
    assert len(built) == 1


# --------------------------------------------------------------------------- the offline path's watchdog


class FakeSyncClient:
    """vLLM's ``SyncMPClient`` as far as ``watchdog.py`` reads it: the output queue the
    offline ``generate`` waits on, and the flag vLLM's monitor sets when the process dies."""

    def __init__(self) -> None:
        self.outputs_queue: queue.Queue = queue.Queue()
        self.resources = SimpleNamespace(engine_dead=False)

    def get_output(self):  # as vLLM's: wait for the queue, raise what it holds
        item = self.outputs_queue.get()
        if isinstance(item, Exception):
            raise item
        return item


class FakeLLM:
    """The offline ``LLM``: ``generate`` waits on the engine's output queue, as vLLM's does;
    ``die_in`` seconds after a call starts, the monitor marks the engine dead and puts
    nothing in the queue (vLLM stops the thread that feeds it)."""

    def __init__(self, die_in: float | None = None) -> None:
        self.llm_engine = SimpleNamespace(engine_core=FakeSyncClient())
        self.die_in = die_in

    def generate(self, prompts, params, use_tqdm=False):
        client = self.llm_engine.engine_core
        if self.die_in is not None:
            threading.Timer(self.die_in, lambda: setattr(client.resources, "engine_dead", True)).start()
        else:
            client.outputs_queue.put("finished")
        return [client.get_output()]


def sync_model(llm: FakeLLM) -> VLLMChatModel:
    model = VLLMChatModel.__new__(VLLMChatModel)
    model.name, model.engine_dead, model.sessions, model.engine, model.llm = "fake-vllm", False, None, None, llm
    model._checked = lambda request: ([1, 2, 3], "")
    model._sampling_params = lambda request, held: None
    return model


def _watchdogs() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "vllm-engine-watchdog"]


def test_an_offline_call_waiting_on_an_engine_that_died_is_woken_and_the_engine_marked_dead():
    model = sync_model(FakeLLM(die_in=0.05))
    call = ThreadPoolExecutor(1).submit(model.complete, [ChatRequest([{"role": "user", "content": "q"}])])
    with pytest.raises(BackendUnavailable, match="EngineDeadError"):
        call.result(timeout=5)  # without the watchdog: waits forever
    assert model.engine_dead and not _watchdogs()


def test_the_watchdog_ends_with_its_call_and_leaves_a_live_engine_alone():
    llm = FakeLLM()
    with unblock_when_dead(llm, poll=0.01):
        assert llm.generate([], []) == ["finished"] and len(_watchdogs()) == 1
    assert not _watchdogs() and llm.llm_engine.engine_core.outputs_queue.empty()
    in_process = SimpleNamespace(llm_engine=SimpleNamespace(engine_core=object()))  # no queue: vLLM in one process
    with unblock_when_dead(in_process):
        assert not _watchdogs()
