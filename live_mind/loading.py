"""From a validated ``Setup`` to loaded models and controllers (every front end).

The solvers, the live session and the server load their models and build their
controllers here, from the run's ``RunConfig`` alone.  Everything a run decides about a
model -- prefix cache, async engine, batched decoding -- is a constructor option
(``construction_options``), fixed before the model loads; nothing is switched after.
"""

from __future__ import annotations

from typing import Any

from .methods import registry as methods
from .methods.base import Method, MethodContext
from .methods.cot import CoTController
from .models import outage, registry
from .models.aio import serializer
from .models.base import Capabilities, native_async
from .models.capabilities import capabilities
from .runconfig import RunConfig, Setup, answering
from .segment import split
from .solver import TimingConfig


def construction_options(caps: Capabilities, *, concurrency: int = 1, batch: bool = False,
                         prefill: bool = False) -> dict[str, Any]:
    """The constructor options a run gives a backend with capabilities ``caps`` (see
    ``load_models``): decided once, before the model loads."""
    options: dict[str, Any] = {}
    if prefill and caps.prefix_cache:
        options.update(prefix_cache=True, prefix_cache_size=max(4, concurrency))
    if concurrency > 1 and caps.async_engine:
        options["async_engine"] = True
    elif concurrency > 1 and batch and caps.batch_decode:
        options["batch_decode"] = True
    return options


def load_models(setup: Setup, *, concurrency: int = 1, batch: bool = False, prefill: bool = False, latch: bool = True,
                **overrides: Any) -> dict[str, Any]:
    """Load each distinct model once (the same name twice shares one instance), each
    behind an outage guard (``models/outage.py``) with the run's ``--max_outage``
    (``latch``: stop for good once it is spent -- the solvers, the live session -- or
    not: the server, which answers that call with an error and probes again next time).
    What a backend can do decides the rest (``capabilities``), all of it at construction:
    ``prefill`` switches on the prefix cache of models that can keep one, one kept prefix
    per question in flight; ``concurrency > 1`` starts engines that can batch the
    requests in flight continuously in that mode (``async_engine``); with ``batch`` (the
    real-time solver's ``--concurrency``) a backend without one that can decode several
    waiting requests together is built so (``batch_decode``) and its worker thread takes
    up to ``concurrency`` of them at once (``models/aio.py``)."""
    loaded: dict[str, Any] = {}
    by_name: dict[str, Any] = {}
    for role, spec in setup.specs.items():
        if spec.name not in by_name:
            caps = capabilities(spec)
            options = {**overrides, **construction_options(caps, concurrency=concurrency, batch=batch, prefill=prefill)}
            model = by_name[spec.name] = outage.guard(registry.build(spec, **options), setup.run.max_outage, latch=latch)
            if options.get("batch_decode") and not native_async(model):
                serializer(model, max_batch=concurrency)
        loaded[role] = by_name[spec.name]
    return loaded


def build_controller(setup: Setup, loaded: dict[str, Any]) -> Method:
    """The run's method (``--method``, ``methods/registry.py``) over already-loaded models."""
    return methods.build(setup.run.method, method_context(setup, loaded))


def describe_method(run: RunConfig) -> str:
    """The run's method in a few words, for the scripts' first line."""
    return {"livemind": f"LiveMind {run.action_set}", "cot": "CoT baseline"}.get(run.method, f"method {run.method}")


def timing_config(run: RunConfig) -> TimingConfig:
    """How the real-time solver's simulated user types and how its calls are charged."""
    return TimingConfig(typing_speed=run.typing_speed, jitter_sigma=run.typing_jitter, seed=run.seed,
                        schedule=run.schedule, options_arrival=run.options_arrival,
                        cancel_on_complete=run.cancel_on_complete, profile=run.profile,
                        prefill_while_typing=run.prefill_while_typing, answer_profile=run.answer_profile)


def load_session_models(setup: Setup, concurrency: int = 1, prefix_cache: bool = True, latch: bool = True) -> dict[str, Any]:
    """Load the model(s) of a live session (the terminal's or the server's), as the solvers
    do; ``concurrency`` (the server's session limit) starts engines that batch the requests
    in flight in that mode (``load_models``).  ``prefix_cache`` applies when every model's
    backend has that switch (``Capabilities.prefix_cache``); otherwise each entry's own
    setting holds."""
    switchable = all(capabilities(spec).prefix_cache for spec in setup.specs.values())
    return load_models(setup, concurrency=concurrency, latch=latch, **({"prefix_cache": prefix_cache} if switchable else {}))


def method_context(setup: Setup, loaded: dict[str, Any]) -> MethodContext:
    """What the run's methods are built from (``methods/registry.py``) over loaded models."""
    run = setup.run
    return MethodContext(run, setup.prompts, loaded, lambda text: split(text, run.granularity, run.min_length))


def build_session(setup: Setup, concurrency: int = 1, prefix_cache: bool = True, baseline: bool = False,
                  latch: bool = True) -> tuple[Method, CoTController | None]:
    """Load the model(s) (``load_session_models``) and build the method and the CoT baseline
    of a live session.  The baseline answers with the answering model under the resolved
    token limit (``--max_new_tokens``, else the model entry's, else the default)."""
    loaded = load_session_models(setup, concurrency, prefix_cache, latch)
    return build_controller(setup, loaded), baseline_controller(setup, loaded) if baseline else None


def baseline_controller(setup: Setup, loaded: dict[str, Any]) -> CoTController:
    """The CoT baseline a live session offers beside its method, on the answering model."""
    run = setup.run
    return CoTController(answering(loaded), setup.prompts, lambda text: split(text, run.granularity, run.min_length),
                         run.max_new_tokens, run.final_answer)
