"""The methods by name: ``--method NAME`` on every front end.

Each entry builds a method (``base.Method``) from a ``MethodContext`` -- the run's
settings, prompts, models by role and segmenter.  ``--use_lm`` is an alias of
``--method livemind``; without either the run is the chain-of-thought baseline, as in the
paper's scripts.  A method from outside the package is ``--method module:Factory`` (the
module importable, e.g. on ``PYTHONPATH``), as a backend from outside is named in a
model entry; see docs/methods.md.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from ..formats import make_format
from .base import Method, MethodContext
from .continuous import Continuous
from .cot import CoTController
from .livemind import LiveMindController
from .predgen import PredGen


class MethodError(ValueError):
    """An unknown or unloadable method name (a one-line usage error)."""


@dataclass(frozen=True)
class MethodInfo:
    """A registered method: its name, a line on what it does and where it comes from,
    whether the live session and the server run it (a two-stage method, ``base.StagedMethod``), its builder, and the backend
    capabilities (``models.base.Capabilities`` fields) its models must have."""

    name: str
    summary: str
    source: str
    build: Callable[[MethodContext], Method]
    live: bool = False
    needs: tuple[str, ...] = ()


def _livemind(ctx: MethodContext) -> LiveMindController:
    run = ctx.run
    return LiveMindController(
        inference_model=ctx.models["model"],
        output_model=ctx.models.get("assist_model"),
        action_set_name=run.action_set,
        prompt_format=make_format(run.prompt_format, ctx.prompts),
        segmenter=ctx.segmenter,
        prime_actions=run.prime_actions,
        constrain_actions=run.constrain_actions,
        max_new_tokens=run.inference_max_new_tokens,
        final_max_new_tokens=run.max_new_tokens,
        final_answer=run.final_answer,
        parse=run.parse,
        batched=run.batched,
    )


def _cot(ctx: MethodContext) -> CoTController:
    return CoTController(ctx.answer_model, ctx.prompts, ctx.segmenter, ctx.run.max_new_tokens, ctx.run.final_answer)


def _predgen(ctx: MethodContext) -> PredGen:
    return PredGen(ctx.answer_model, ctx.prompts, ctx.segmenter, ctx.run.max_new_tokens, ctx.run.final_answer)


def _continuous(ctx: MethodContext) -> Continuous:
    return Continuous(ctx.answer_model, ctx.prompts, ctx.segmenter, ctx.run.max_new_tokens, ctx.run.final_answer,
                      think_tokens=ctx.run.inference_max_new_tokens)


REGISTRY: dict[str, MethodInfo] = {}


def register(info: MethodInfo) -> None:
    """Add a method under its name (a name already taken is an error)."""
    if info.name in REGISTRY:
        raise ValueError(f"method {info.name!r} is registered already")
    REGISTRY[info.name] = info


register(MethodInfo("livemind", "reasons on each typed segment, answers from its inferences once the input is complete",
                    "LiveMind (Chen et al. 2024, arXiv 2406.14319), paper §3", _livemind, live=True))
register(MethodInfo("cot", "one chain-of-thought call on the complete input (the paper's baseline)",
                    "LiveMind paper §4.1 baseline", _cot, live=True))
register(MethodInfo("predgen", "speculates the whole answer on each partial input; at completion reuses it, verifies it "
                               "as a draft, or answers afresh",
                    "PredGen (input-time speculation, 2025); see docs/methods.md for what differs", _predgen, live=True))
register(MethodInfo("continuous", "one conversation that keeps thinking as each segment is appended, then a short answer",
                    "think-while-listening (AsyncReasoning, StreamingThinker); see docs/methods.md", _continuous,
                    live=True, needs=("extends_context",)))

DEFAULT_METHOD = "cot"
PAPER_METHODS = ("livemind", "cot")
"""The paper's methods: a run configuration saves them as the alias flag's value."""
ALIAS_FLAG = "use_lm"
"""The paper's flag, kept as an alias of ``--method livemind`` (its value is saved in every
run configuration, so runs keep their ``config_id``)."""


def chosen(method: str | None, alias: bool) -> str:
    """The method a run asked for: ``--method``, else ``livemind`` under the alias, else
    the baseline.  ``MethodError`` when both are given and disagree."""
    if method is not None and alias and method != "livemind":
        raise MethodError(f"--{ALIAS_FLAG} means --method livemind; it cannot be combined with --method {method}")
    return method or ("livemind" if alias else DEFAULT_METHOD)


def info(name: str) -> MethodInfo:
    """The registered method, or one from outside the package (``module:Factory``)."""
    if name in REGISTRY:
        return REGISTRY[name]
    if ":" not in name:
        raise MethodError(f"unknown method {name!r}; known: {', '.join(REGISTRY)} (or module:Factory)")
    module_name, _, attr = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise MethodError(f"method {name!r} cannot be loaded: {type(exc).__name__}: {exc}") from None
    return MethodInfo(name, getattr(factory, "__doc__", "") or "", module_name, factory)


def build(name: str, ctx: MethodContext) -> Method:
    return info(name).build(ctx)


def missing_capability(name: str, caps: object) -> str | None:
    """The first capability method ``name`` needs that ``caps`` lacks (None: none)."""
    return next((need for need in info(name).needs if not getattr(caps, need, False)), None)


def describe() -> str:
    """The registered methods, one block each (``live-mind methods``)."""
    return "\n".join(f"{m.name:10s} {m.summary}\n{'':10s} source: {m.source}{'; also live and served' if m.live else ''}"
                     for m in REGISTRY.values())
