"""What a loaded transformers model says about itself, read once at load: its context
window, its end-of-turn tokens and whether its KV cache can be cut back to a prefix.

The model, its config and its tokenizer are library objects whose attributes depend on
the transformers version and the checkpoint, so each is read with a default."""

from __future__ import annotations

import logging
from typing import Any

from ..base import ModelError
from ..mapping import end_of_turn_ids

log = logging.getLogger(__name__)

_TURN_MARK = "LIVEMINDTURNMARK"


def context_window(model: Any, tokenizer: Any) -> int | None:
    """The model's context length (its config's, else the tokenizer's plausible one)."""
    n = getattr(model.config, "max_position_embeddings", None)  # library object: see the module notes
    if isinstance(n, int) and n > 0:
        return n
    n = getattr(tokenizer, "model_max_length", None)  # library object: see the module notes
    return n if isinstance(n, int) and 0 < n < 10**8 else None


def stop_ids(name: str, model: Any, tokenizer: Any) -> set[int]:
    """``mapping.end_of_turn_ids`` plus the generation config's EOS and the special token
    the chat template writes after an assistant turn (found by rendering a probe chat)."""
    ids = set(end_of_turn_ids(tokenizer))
    eos = getattr(model.generation_config, "eos_token_id", None)  # library object: see the module notes
    ids.update(i for i in (eos if isinstance(eos, (list, tuple)) else [eos]) if isinstance(i, int))
    try:
        chat = [{"role": "user", "content": "ping"}, {"role": "assistant", "content": _TURN_MARK}]
        tail = tokenizer.apply_chat_template(chat, tokenize=False).split(_TURN_MARK, 1)[1]
        tail_ids = tokenizer(tail, add_special_tokens=False)["input_ids"]
        if tail_ids and tail_ids[0] in set(tokenizer.all_special_ids):
            ids.add(tail_ids[0])
    except Exception as exc:  # a template that rejects the probe chat: the names suffice
        log.debug("end-of-turn probe failed for %s: %s", name, exc)
    if not ids:
        raise ModelError(f"{name}: cannot determine an end-of-turn token")
    return ids


def cache_is_croppable(name: str, model: Any, empty_cache: Any) -> bool:
    """Whether a KV cache of this model can be cut back to a prefix (full attention in every
    layer, and cache layers that can be cropped): prefix KV reuse needs it."""
    config = model.config
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    layer_types = getattr(config, "layer_types", None) or []  # library object: see the module notes
    if getattr(config, "sliding_window", None) or any(t != "full_attention" for t in layer_types):  # library object
        log.warning("%s uses non-full attention layers: prefix KV reuse disabled", name)
        return False
    layers = getattr(empty_cache, "layers", [])  # library object: see the module notes
    return all(getattr(layer, "is_croppable", True) for layer in layers)  # library object: see the module notes
