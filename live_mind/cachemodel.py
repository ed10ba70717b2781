"""The modelled prefix cache of one question (token-cost timing, paper §4.1 latency).

Under ``--timing PROFILE`` a call's cost depends on how many of its prompt tokens come
from a prefix (KV) cache.  What an engine *reports* depends on its neighbours: a cache
keeps a few questions (transformers), one (llama.cpp in process) or what block eviction
leaves under load (vLLM), so interleaving questions would change a question's modelled
latency.  The modelled cache depends on the question alone:

    cached = the longest token prefix the call's prompt shares with any earlier prompt
             (or prefill) of the *same question* on the *same model*,
             at most prompt - 1 (the last prompt token is always computed, for fresh
             logits), rounded down to the profile's ``cache_block`` when it names one,
             and 0 when the model does not reuse prefixes (``reuses_prefixes``).

That is an ideal per-question cache: nothing is ever evicted, and no question benefits
from another's prompt.  Under the paper's protocol (no prefix reuse) it is 0, as in the
published runs.  The engine's own count is kept beside it as a diagnostic
(``engine_cached_tokens`` in ``usage`` and ``steps``).

A backend shows its prompt's token ids through ``prompt_ids(request)`` (the shared chat
rendering of ``models/mapping.py``; the scripted test model counts words).  One that
cannot (an OpenAI-compatible chat endpoint without a local tokenizer) keeps the engine's
count, and the step says so (``cache_rule = "engine"``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Generator, Sequence

from .models.base import ChatRequest, Completion, prompt_ids, reuses_prefixes
from .models.mapping import common_prefix_length

ENGINE_KEY = "engine_cached_tokens"
RULE_KEY = "cache_rule"


def modelled_cached(earlier: Sequence[Sequence[int]], ids: Sequence[int], block: int = 0) -> int:
    """The rule of the module docstring for a model that reuses prefixes."""
    shared = max((common_prefix_length(p, ids) for p in earlier), default=0)
    shared = max(0, min(shared, len(ids) - 1))
    return shared // block * block if block > 1 else shared


class QuestionCache:
    """The prompts one question has sent, per model, and the modelled cache of each call."""

    def __init__(self, block: int = 0) -> None:
        self.block = block
        self.prompts: dict[int, list[list[int]]] = {}

    def charge(self, model: Any, request: ChatRequest, completion: Completion) -> Completion:
        """``completion`` with ``cached_tokens`` replaced by the modelled count (the
        engine's count moves to ``extra``)."""
        found = prompt_ids(model, request)
        if found is None:
            return dataclasses.replace(completion, extra={**completion.extra, ENGINE_KEY: completion.cached_tokens,
                                                          RULE_KEY: "engine"})
        ids = list(found)
        earlier = self.prompts.setdefault(id(model), [])
        cached = modelled_cached(earlier, ids, self.block) if reuses_prefixes(model) else 0
        earlier.append(ids)
        return dataclasses.replace(completion, cached_tokens=cached,
                                   extra={**completion.extra, ENGINE_KEY: completion.cached_tokens, RULE_KEY: "question"})


def with_modelled_cache(calls: Generator[Any, Completion, Any], block: int = 0) -> Generator[Any, Completion, Any]:
    """Pass a question's ``(model, request)`` calls through, handing each completion back
    with its modelled cache (``QuestionCache.charge``); errors thrown in go through."""
    cache = QuestionCache(block)
    try:
        call = next(calls)
        while True:
            try:
                completion = yield call
            except Exception as exc:  # noqa: BLE001 - the question's generator decides
                call = calls.throw(exc)
            else:
                call = calls.send(cache.charge(call[0], call[1], completion))
    except StopIteration as done:
        return done.value
