"""The model contract (``models/base.py``): every member's default, and the one
delegation pattern (``ModelWrapper``) shared by the outage guard and the server's
per-session handle."""

from __future__ import annotations

import asyncio
import threading

import pytest

from live_mind.models import aio
from live_mind.models.base import (
    Capabilities,
    ChatModel,
    ChatRequest,
    Completion,
    ModelWrapper,
    model_name,
    native_async,
    prompt_ids,
    report_status,
    reuses_prefixes,
)
from live_mind.models.outage import AsyncOutageGuard, OutageGuard, guard
from live_mind.models.scripted import ScriptedModel

REQ = ChatRequest(messages=[{"role": "user", "content": "two words"}])


class Minimal(ChatModel):
    """A backend that only implements ``complete``."""

    def complete(self, requests):
        return [Completion("ok", 1, 1, 0.0) for _ in requests]


class Plain:
    """Not a ``ChatModel`` subclass at all: a test double with ``complete`` only."""

    def complete(self, requests):
        return [Completion("plain", 1, 1, 0.0) for _ in requests]


class Full(ChatModel):
    name = "full"
    capabilities = Capabilities(streaming=True, prefix_cache=True)
    reuses_prefixes = True
    native_async = True

    def __init__(self) -> None:
        self.status = None

    def complete(self, requests):
        return [Completion("sync", 1, 1, 0.0) for _ in requests]

    async def acomplete(self, request):
        return Completion("async", 1, 1, 0.0)

    def prompt_ids(self, request):
        return [7, 8]

    def report_status(self, callback):
        self.status = callback


@pytest.mark.parametrize("model", [Minimal(), Plain()], ids=["subclass", "plain object"])
def test_every_member_has_a_documented_default(model):
    assert model_name(model) == "model"
    assert not native_async(model) and not reuses_prefixes(model)
    assert prompt_ids(model, REQ) is None
    report_status(model, print)  # nothing to report: no error
    assert ModelWrapper(model).capabilities == Capabilities()


def test_a_subclass_default_acomplete_runs_complete():
    assert asyncio.run(Minimal().acomplete(REQ)).text == "ok"


def make_wrappers(inner):
    gone = threading.Event()
    from live_mind.serve.session import SharedModel

    return {"wrapper": ModelWrapper(inner), "guard": guard(inner, max_outage=1), "shared": SharedModel(inner, gone)}


@pytest.mark.parametrize("kind", ["wrapper", "guard", "shared"])
def test_wrappers_pass_every_member_of_the_contract_through(kind):
    inner = Full()
    wrapper = make_wrappers(inner)[kind]
    assert isinstance(wrapper, ModelWrapper)
    assert wrapper.name == "full" and wrapper.capabilities == inner.capabilities
    assert wrapper.reuses_prefixes is True and wrapper.prompt_ids(REQ) == [7, 8]
    if kind == "shared":  # a session's calls go through complete only, on the shared (async) path
        assert wrapper.native_async is False and wrapper.complete([REQ])[0].text == "async"
    else:
        assert wrapper.native_async is True and wrapper.complete([REQ])[0].text == "sync"
        assert asyncio.run(wrapper.acomplete(REQ)).text == "async"
    assert not hasattr(wrapper, "no_such_member"), "nothing outside the contract is forwarded"


def test_the_guard_takes_status_reports_and_picks_its_path_from_the_contract():
    shown = []
    model = guard(Full(), max_outage=1)
    report_status(model, shown.append)
    assert isinstance(model, AsyncOutageGuard) and model.on_status == shown.append
    plain = guard(ScriptedModel(), max_outage=1)
    assert type(plain) is OutageGuard and not aio.native_async(plain)
