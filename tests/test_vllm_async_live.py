"""vLLM's async engine mode (``async_engine = true``) on CPU with the embedded model.

One engine for the module (about a minute to start on CPU): requests awaited together
through ``models.aio.acomplete`` keep the constraints, report usage and prefix-cache hits,
and two questions solved concurrently under a profile get the modelled per-question cache.
Skips with the reason when vLLM or the embedded model is absent.
"""

from __future__ import annotations

import asyncio

import pytest
from conftest import kill_engine_core_mid_call, skip_without_live_vllm

skip_without_live_vllm()

from live_mind.models import registry  # noqa: E402
from live_mind.models.base import ChatRequest, Completion  # noqa: E402
from live_mind.models.outage import guard  # noqa: E402

pytestmark = pytest.mark.model
LEADS = [" background.", " inference.", " hypothesize.", " wait."]
SYSTEM = {"role": "system", "content": "You read a problem while it is typed. Reply `action NAME. content`."}
TEXT = "A train leaves the station at 9 am and travels 60 km in 1.5 hours. It then stops for 20 minutes."


@pytest.fixture(scope="module")
def engine_model():
    model = registry.build(registry.resolve("smollm2-135m-vllm"), async_engine=True)
    yield model
    model.engine.shutdown()


def _request(**options) -> ChatRequest:
    return ChatRequest([SYSTEM, {"role": "user", "content": f"The problem so far: {TEXT}"}], max_new_tokens=16, **options)


def test_requests_in_flight_together_keep_constraints_and_usage(engine_model):
    from live_mind.models.aio import acomplete, native_async

    assert native_async(engine_model)
    requests = [_request(assistant_prefix="action "), _request(assistant_prefix="action", lead_choices=LEADS),
                _request(assistant_prefix="The answer is (", choices=list("ABCD")), _request(assistant_prefix="action ")]

    async def main():
        return await asyncio.gather(*(acomplete(engine_model, r) for r in requests))

    healed, named, letter, again = asyncio.run(main())
    assert not healed.text.startswith(" ") and any(named.text.startswith(lead) for lead in LEADS), named.text
    assert letter.text in list("ABCD")
    assert healed.prompt_tokens == len(engine_model.prompt_ids(requests[0])) and healed.completion_tokens > 0
    later = engine_model.complete([_request(assistant_prefix="action ")])[0]
    assert later.cached_tokens > 0  # the engine's prefix cache served the shared prompt


def test_two_questions_concurrently_get_the_modelled_cache(engine_model):
    from live_mind.concurrency import solve_concurrently
    from live_mind.data import load_sample_questions
    from live_mind.methods.livemind import LiveMindController
    from live_mind.profiles import resolve
    from live_mind.solver import TimingConfig

    rows = load_sample_questions()[:2]
    make = lambda: LiveMindController(engine_model, prime_actions=True, constrain_actions=True,  # noqa: E731
                                      max_new_tokens=8, final_max_new_tokens=8)
    records = solve_concurrently(make, rows, TimingConfig(profile=resolve("local-smollm2-135m")), 2)
    assert len(records) == 2 and all(r["error"] is None for r in records)
    for record in records:
        cached = record["usage"]["cached_tokens"]
        assert "engine_cached_tokens" in record["usage"] and cached[0] == 0 and max(cached[1:]) > 0


def test_the_async_engine_killed_mid_call_is_rebuilt_and_the_call_answered(engine_model):
    """Last in the module (it leaves the fixture's engine rebuilt): the ``--concurrency``
    path, awaited through the solver's outage guard while the engine process is SIGKILLed."""
    statuses: list = []
    guarded = guard(engine_model, max_outage=600, on_status=statuses.append)
    request = ChatRequest([{"role": "user", "content": "Count from 1 to 1000, one number per line."}], max_new_tokens=512)
    outcome, before, after = kill_engine_core_mid_call(lambda: asyncio.run(guarded.acomplete(request)))
    assert isinstance(outcome, Completion), outcome
    assert outcome.completion_tokens > 0 and outcome.finish_reason != "cancelled"
    assert statuses and statuses[0] is not None and statuses[-1] is None, statuses
    assert after and after.isdisjoint(before)
