"""Engine-free parts of the transformers backend's decoding loop, testable without a model.

* ``ChoiceTrie`` -- the token sequences of the allowed outputs (``ChatRequest.choices``
  or ``lead_choices``), asked which tokens may come next after the tokens generated so
  far, and whether a choice is already complete.
* ``PrefixCache`` -- prefix KV reuse bookkeeping: per ``cache_key`` the latest KV cache
  and the token ids it holds, for at most ``size`` keys (least recently used evicted).
  ``take`` returns a cache cropped to the longest common token prefix with the new
  prompt, always leaving at least one prompt token to prefill (the model needs fresh
  logits for the first new token).  The cache object only needs ``get_seq_length()``
  and ``crop(-n)``, as transformers' ``DynamicCache`` has.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from .mapping import common_prefix_length


class ChoiceTrie:
    """Token sequences of the allowed outputs, queried by the tokens generated so far."""

    def __init__(self, choices: list[str], sequences: list[list[int]]) -> None:
        self.items = list(zip(choices, sequences))

    def step(self, generated: list[int]) -> tuple[set[int], str | None]:
        """Allowed next tokens, and the choice already complete (if any)."""
        n = len(generated)
        allowed: set[int] = set()
        complete = None
        for text, seq in self.items:
            if seq[:n] != generated:
                continue
            if len(seq) == n:
                complete = text
            else:
                allowed.add(seq[n])
        return allowed, complete

    def longest(self) -> int:
        return max(len(seq) for _, seq in self.items)


@dataclass
class CachedPrefix:
    """A KV cache and the token ids whose keys/values it holds (same length)."""

    ids: list[int]
    cache: Any


class PrefixCache:
    """The latest KV cache per key, reused for the common token prefix of the next prompt."""

    def __init__(self, new_cache: Callable[[], Any], size: int = 4, enabled: bool = True) -> None:
        if size < 1:
            raise ValueError(f"prefix_cache_size must be >= 1, got {size}")
        self.new_cache, self.size, self.enabled = new_cache, size, enabled
        self.entries: OrderedDict[str, CachedPrefix] = OrderedDict()

    def take(self, ids: list[int], key: str | None) -> tuple[Any, list[int]]:
        """A cache holding a prefix of ``ids`` (possibly empty) and the ids in it; the entry
        leaves the store until ``store`` puts the grown cache back."""
        entry = self.entries.pop(key, None) if (self.enabled and key is not None) else None
        if entry is None:
            return self.new_cache(), []
        keep = min(common_prefix_length(entry.ids, ids), len(ids) - 1)
        if keep <= 0:
            return self.new_cache(), []
        held = entry.cache.get_seq_length()
        if held > keep:
            entry.cache.crop(-(held - keep))
        if entry.cache.get_seq_length() != keep:
            return self.new_cache(), []
        return entry.cache, entry.ids[:keep]

    def store(self, key: str | None, ids: list[int], cache: Any) -> None:
        if not self.enabled or key is None:
            return
        self.entries[key] = CachedPrefix(ids, cache)
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

    def clear(self) -> None:
        self.entries.clear()
