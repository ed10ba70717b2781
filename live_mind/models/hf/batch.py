"""Batched greedy decoding for the transformers backend (several questions in flight).

``TransformersChatModel.complete`` runs a batch one request after another.  When several
questions are in flight (``run_solver.py --concurrency N``) their plain requests -- no
``choices``, no held priming whitespace, no prefill-only call and no prefix cache to
reuse -- can share one forward pass per decoding step instead: prompts
left-padded to one length, an attention mask over the padding, positions counted from
each prompt's first real token, greedy argmax per row, each row stopping at its own
end-of-turn token or token budget.  A row with ``lead_choices`` (a forced action name
after the ``action`` priming) picks its first tokens among those its choice trie allows,
then continues freely, as the one-by-one decode does.  Every completion carries the batch's wall time
(``base.py``).  It decodes through the model's internal interface (``new_cache``,
``step_kwargs``, ``choice_trie`` and the plain attributes), never its private members.  The other requests of the batch still run one by one.

Padding changes the arithmetic a little (bfloat16 sums in another order), so a batched
row can pick a different token where two are nearly tied; the records of a batched run
then differ from a sequential run's, which ``docs/timing.md`` reports.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from ..base import ChatRequest, Completion


def batchable(model: Any, request: ChatRequest, held: str) -> bool:
    """Whether ``request`` can join a batched decode."""
    reuse = model.prefixes.enabled and request.cache_key is not None
    return not (request.choices or request.prefill_only or held or reuse)


def complete_batch(model: Any, requests: Sequence[ChatRequest], encoded: Sequence[tuple[list[int], str]]) -> list[Completion]:
    """Greedy-decode ``requests`` (all batchable, already encoded) together."""
    torch = model.torch
    pad = model.tokenizer.pad_token_id
    if pad is None:
        pad = next(iter(model.stop_ids)) if model.stop_ids else 0
    ids = [e[0] for e in encoded]
    width = max(len(x) for x in ids)
    budgets = [r.max_new_tokens for r in requests]
    tries = [model.choice_trie(r.lead_choices) if r.lead_choices else None for r in requests]
    start = time.perf_counter()
    with torch.inference_mode():
        tokens = torch.tensor([[pad] * (width - len(x)) + x for x in ids], dtype=torch.long, device=model.device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], dtype=torch.long, device=model.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = model.new_cache()
        generated: list[list[int]] = [[] for _ in ids]
        stopped = [False] * len(ids)
        active = [b > 0 for b in budgets]
        step_input, step_positions = tokens, positions
        while any(active):
            kwargs = {**model.step_kwargs(cache), "attention_mask": mask, "position_ids": step_positions}
            logits = model.model(input_ids=step_input, **kwargs).logits[:, -1]
            chosen = [int(t) for t in torch.argmax(logits, dim=-1)]
            for row, token in enumerate(chosen):
                if not active[row]:
                    continue
                trie = tries[row]
                if trie is not None:
                    allowed, complete = trie.step(generated[row])
                    candidates = sorted(allowed | (model.stop_ids if complete is not None else set()))
                    index = torch.tensor(candidates, device=logits.device)
                    token = candidates[int(torch.argmax(logits[row][index]))]
                if token in model.stop_ids:
                    stopped[row], active[row] = True, False
                    continue
                generated[row].append(token)
                if trie is not None:
                    allowed, complete = trie.step(generated[row])
                    if complete is not None and not allowed:
                        tries[row] = None  # the forced opening is in place: continue freely
                if len(generated[row]) >= budgets[row]:
                    active[row] = False
            if not any(active):
                break
            feed = [g[-1] if a else pad for g, a in zip(generated, active)]
            step_input = torch.tensor([[t] for t in feed], dtype=torch.long, device=model.device)
            mask = torch.cat([mask, torch.ones((len(ids), 1), dtype=torch.long, device=model.device)], dim=1)
            step_positions = step_positions[:, -1:] + 1
    seconds = time.perf_counter() - start
    return [
        Completion(
            text=model.tokenizer.decode(gen, skip_special_tokens=True),
            prompt_tokens=len(x),
            completion_tokens=len(gen),
            seconds=seconds,
            finish_reason="stop" if stop else "length",
            extra={"stop_token": stop, "token_ids": gen, "batched": len(ids)},
        )
        for x, gen, stop in zip(ids, generated, stopped)
    ]
