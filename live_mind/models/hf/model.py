"""Local chat backend on Hugging Face ``transformers`` (the inference and output models of §3).

Runs a causal LM in-process (default: the embedded SmolLM2-135M GGUF; any local folder,
hub id or GGUF file works) and times every call around the real generation.

* **Greedy loop of our own** (``argmax`` each step, no sampling or repetition penalty,
  what ``generate(do_sample=False)`` computes), because LiveMind needs exact token
  counts, constrained output, prefix KV reuse, token streaming and stopping mid-call.
* **Prompt** as on every backend (``mapping.chat_prompt_ids``): the chat template with
  the generation prompt, plus ``assistant_prefix`` (response priming).
* **Prefix healing** (``heal_prefix``, on by default; ``mapping.split_for_healing``):
  trailing whitespace of the prefix is held back and the first token must start with
  it.  A prompt ending in a lone space token derails small models (SmolLM2 answered
  ``"action "`` with ``"1: A train..."``).  Never applied with ``choices``.
* **Stopping** at the tokenizer's and generation config's EOS, the known end-of-turn
  tokens (``mapping.end_of_turn_ids``) and the one the chat template itself writes
  after an assistant turn.  ``completion_tokens`` excludes the stop token.
* **Batches run one request at a time** (``batch_decode``: plain requests share one
  batched decode, ``batch.py``); ``Completion.seconds`` is the request's own wall
  time, ``extra["prefill_seconds"]`` its prefill part.
* **Constrained output**: ``choices`` and ``lead_choices`` decode greedily over a
  ``decoding.ChoiceTrie``; the text of ``choices`` is the chosen string exactly, with
  ``lead_choices`` decoding goes on freely once a lead string is complete.
* **Prefix KV reuse** (``prefix_cache=True``): ``decoding.PrefixCache`` keeps the
  latest cache per ``cache_key``; ``cached_tokens`` reports the reused prompt tokens.
  Non-croppable caches fall back to full prefill.  A ``prefill_only`` request only
  prefills and stores its prompt (prefill while typing).
* ``ChatRequest.on_token`` receives the reply's text as it is decoded, and
  ``ChatRequest.stop`` ends decoding between two steps; the KV cache stays consistent
  and is kept for the next call.
* ``ContextLengthExceeded`` when prompt plus new-token budget exceed the model's
  ``max_position_embeddings``.
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..base import Capabilities, ChatModel, ChatRequest, Completion, ContextLengthExceeded, ModelError, stop_requested
from ..decoding import ChoiceTrie, PrefixCache
from ..embedded import embedded_gguf_path
from ..mapping import chat_prompt_ids, healing_split, load_chat_tokenizer, strip_held
from ..streaming import TextStream
from .facts import cache_is_croppable, context_window, stop_ids
from .loading import DEFAULT_DTYPE, DTYPES, load_options

log = logging.getLogger(__name__)



@dataclass
class _Decoded:
    """What one greedy decode produced."""

    reused: int
    prefill_seconds: float
    generated: list[int] = field(default_factory=list)
    stopped: bool = False
    choice: str | None = None
    cancelled: bool = False


class TransformersChatModel(ChatModel):
    """A ``ChatModel`` running a causal LM in-process with ``transformers``.

    ``model_path`` is a local Hugging Face folder, a hub id, or -- with ``gguf_file`` --
    the folder holding that GGUF file (a path ending in ``.gguf`` is split for you).
    ``threads`` sets ``torch.set_num_threads`` (process-wide).
    """

    capabilities = Capabilities(prefix_cache=True, prefill_only=True, choices=True, lead_choices=True,
                                streaming=True, stop=True, batch_decode=True, threads_option="threads")

    def __init__(
        self,
        model_path: str,
        *,
        gguf_file: str | None = None,
        tokenizer_path: str | None = None,
        device: str = "cpu",
        dtype: str = DEFAULT_DTYPE,
        name: str | None = None,
        threads: int | None = None,
        prefix_cache: bool = False,
        prefix_cache_size: int = 4,
        heal_prefix: bool = True,
        batch_decode: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(set(DTYPES.values()))}")
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be >= 1, got {threads}")
            torch.set_num_threads(threads)
        model_path = str(model_path)
        if model_path.startswith(("/", "./", "../", "~")):
            model_path = str(Path(model_path).expanduser())
            if not Path(model_path).exists():
                raise FileNotFoundError(f"model path not found: {model_path}")
        if gguf_file is None and model_path.endswith(".gguf") and Path(model_path).is_file():
            model_path, gguf_file = str(Path(model_path).parent), Path(model_path).name
        if gguf_file is not None and Path(model_path).is_dir() and not (Path(model_path) / gguf_file).is_file():
            raise FileNotFoundError(f"GGUF file {gguf_file!r} not found in {model_path}")

        self.torch = torch
        self.device = device
        self.name = name or (Path(gguf_file).stem if gguf_file else Path(model_path).name or model_path)
        load_kw = load_options(dtype, gguf_file)

        start = time.perf_counter()
        tokenizer_source = tokenizer_path or (str(Path(model_path) / gguf_file) if gguf_file else model_path)
        self.tokenizer = load_chat_tokenizer(str(tokenizer_source))
        try:
            self.model = AutoModelForCausalLM.from_pretrained(model_path, **load_kw)
        except ValueError as exc:
            if "accelerate" in str(exc):  # transformers 5 needs it to read GGUF files
                raise ModelError(f"loading {self.name} needs the accelerate package: pip install accelerate") from None
            raise
        self.model.to(device)
        self.model.eval()
        self.load_seconds = time.perf_counter() - start
        log.info("loaded %s (%s, %s) in %.1f s", self.name, dtype, device, self.load_seconds)

        if not getattr(self.tokenizer, "chat_template", None):  # a library object (tokenizer, config, response): the attribute depends on its version
            raise ModelError(f"{self.name}: the tokenizer has no chat template; pass tokenizer_path= of a chat model")
        params = inspect.signature(self.model.forward).parameters
        cache_kw = "cache" if "cache" in params else "past_key_values"
        keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
        self._step_kwargs = {"use_cache": True, **({keep_kw: 1} if keep_kw else {})}
        self._cache_kw = cache_kw
        self.max_context = context_window(self.model, self.tokenizer)
        self.stop_ids = stop_ids(self.name, self.model, self.tokenizer)
        self.prefixes = PrefixCache(self.new_cache, prefix_cache_size,
                                    prefix_cache and cache_is_croppable(self.name, self.model, self.new_cache()))
        self.heal_prefix = heal_prefix
        self.batch_decode = batch_decode  # set at construction (cli.load_models), never flipped after
        self._heal_masks: dict[str, Any] = {}

    @classmethod
    def embedded(cls, **kwargs: Any) -> "TransformersChatModel":
        """The embedded SmolLM2-135M-Instruct (raises ``EmbeddedModelMissing`` if absent)."""
        path = embedded_gguf_path()
        kwargs.setdefault("name", "SmolLM2-135M-Instruct")
        return cls(str(path.parent), gguf_file=path.name, **kwargs)

    def __repr__(self) -> str:
        return f"TransformersChatModel(name={self.name!r}, device={self.device!r})"

    # ------------------------------------------------------------------ the subpackage's internal interface
    # (``batch.py`` decodes with these; ``torch``, ``model``, ``tokenizer``, ``device``,
    # ``stop_ids`` and ``prefixes`` are plain attributes)
    def new_cache(self) -> Any:
        """An empty KV cache for this model."""
        from transformers import DynamicCache

        try:
            return DynamicCache(config=self.model.config)
        except TypeError:
            return DynamicCache()

    def step_kwargs(self, cache: Any) -> dict[str, Any]:
        """Keyword arguments of one forward step over ``cache``: the cache under the name this
        model's ``forward`` takes, caching on, only the last position's logits."""
        return {self._cache_kw: cache, **self._step_kwargs}

    def choice_trie(self, choices: list[str]) -> ChoiceTrie:
        """The token trie of ``choices`` (constrained decoding)."""
        if not choices or any(not isinstance(c, str) or not c for c in choices):
            raise ValueError("choices must be a non-empty list of non-empty strings")
        unique = list(dict.fromkeys(choices))
        seqs = [list(self.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in unique]
        return ChoiceTrie(unique, seqs)

    # ------------------------------------------------------------------ the protocol
    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """One completion per request, in order; requests run one after another, except
        that with ``batch_decode`` on two or more plain requests share one batched decode
        (``batch.py``; the real-time solver turns it on for ``--concurrency``)."""
        from .batch import batchable, complete_batch

        encoded = [self._encode(r) for r in requests] if len(requests) > 1 and self.batch_decode else []
        group = [i for i, (r, e) in enumerate(zip(requests, encoded)) if batchable(self, r, e[1])
                 and (self.max_context is None or len(e[0]) + r.max_new_tokens <= self.max_context)]
        if len(group) < 2:
            return [self._complete_one(r) for r in requests]
        batched = dict(zip(group, complete_batch(self, [requests[i] for i in group], [encoded[i] for i in group])))
        return [batched[i] if i in batched else self._complete_one(r) for i, r in enumerate(requests)]

    def clear_prefix_cache(self) -> None:
        """Forget every kept KV cache."""
        self.prefixes.clear()

    @property
    def reuses_prefixes(self) -> bool:
        """Whether a question's later calls reuse its kept prefixes (``prefix_cache``)."""
        return self.prefixes.enabled

    def prompt_ids(self, request: ChatRequest) -> list[int]:
        """Token ids of the rendered chat plus the assistant prefix (as fed to the model)."""
        return self._encode(request)[0]

    def _encode(self, request: ChatRequest) -> tuple[list[int], str]:
        """Prompt ids, and the trailing whitespace of the prefix held back for healing."""
        _validate(request)
        prefix, held = healing_split(request, self.heal_prefix)
        try:
            return chat_prompt_ids(self.tokenizer, request.messages, prefix), held
        except Exception as exc:
            raise ValueError(f"chat template of {self.name} rejected the messages: {exc}") from None

    def _heal_mask(self, held: str) -> Any:
        """Boolean mask over the vocabulary: tokens whose text starts with ``held``, and
        the stop tokens."""
        if held not in self._heal_masks:
            anchor = self.tokenizer("a", add_special_tokens=False)["input_ids"]
            base = len(self.tokenizer.decode(anchor))
            n = len(self.tokenizer)
            texts = self.tokenizer.batch_decode([anchor + [i] for i in range(n)])
            special = set(self.tokenizer.all_special_ids)
            size = self.model.get_output_embeddings().weight.shape[0]
            mask = self.torch.zeros(size, dtype=self.torch.bool)
            ok = [i for i, t in enumerate(texts) if i < size and i not in special and t[base:].startswith(held)]
            mask[ok] = True
            mask[sorted(i for i in self.stop_ids if i < size)] = True  # ending the turn stays possible
            self._heal_masks[held] = mask
        return self._heal_masks[held]

    def _complete_one(self, request: ChatRequest) -> Completion:
        ids, held = self._encode(request)
        if held:
            self._heal_mask(held)  # built once per whitespace string, outside the timing
        trie = None
        lead = request.lead_choices is not None and request.choices is None
        budget = request.max_new_tokens
        if request.prefill_only:
            budget = 0  # read the prompt into the prefix cache, generate nothing
        elif request.choices is not None:
            trie = self.choice_trie(request.choices)
            budget = trie.longest()
        elif lead:
            trie = self.choice_trie(request.lead_choices)
        if self.max_context is not None and len(ids) + budget > self.max_context:
            raise ContextLengthExceeded(
                f"{self.name}: prompt of {len(ids)} tokens + {budget} new tokens exceeds "
                f"the context window of {self.max_context} tokens"
            )
        start = time.perf_counter()
        stream = TextStream(request.on_token, held)
        with self.torch.inference_mode():
            out = self._decode(ids, budget, trie, request, held, lead, stream)
        if out.choice is not None and not lead:
            text = out.choice
        else:
            text = strip_held(self.tokenizer.decode(out.generated, skip_special_tokens=True), held)
        stream.finish(text)
        seconds = time.perf_counter() - start
        finish = "stop" if out.stopped or (out.choice is not None and not lead) else "length"
        return Completion(
            text=text,
            prompt_tokens=len(ids),
            completion_tokens=len(out.generated),
            seconds=seconds,
            cached_tokens=out.reused,
            finish_reason="cancelled" if out.cancelled else finish,
            extra={"stop_token": out.stopped, "token_ids": out.generated, "prefill_seconds": out.prefill_seconds},
        )

    # ------------------------------------------------------------------ decoding
    def _forward(self, ids: list[int], cache: Any) -> Any:
        input_ids = self.torch.tensor([ids], dtype=self.torch.long, device=self.device)
        return self.model(input_ids=input_ids, **self.step_kwargs(cache)).logits[0, -1]

    def _decode(
        self, ids: list[int], budget: int, trie: ChoiceTrie | None, request: ChatRequest, held: str, lead: bool,
        stream: TextStream,
    ) -> "_Decoded":
        """Greedy decoding of one prompt (see the module docstring)."""
        key = request.cache_key
        cache, in_cache = self.prefixes.take(ids, key)
        reused = len(in_cache)
        started = time.perf_counter()
        logits = self._forward(ids[reused:], cache)
        out = _Decoded(reused=reused, prefill_seconds=time.perf_counter() - started)
        in_cache = in_cache + ids[reused:]
        generated = out.generated
        while len(generated) < budget:
            if (trie is None or lead) and stop_requested(request):
                out.cancelled = True  # every generated token is in the cache: it stays usable
                break
            if trie is not None:
                allowed, complete = trie.step(generated)
                candidates = sorted(allowed | (self.stop_ids if complete is not None else set()))
                index = self.torch.tensor(candidates, device=logits.device)
                token = candidates[int(self.torch.argmax(logits[index]))]
                if token in self.stop_ids:
                    out.choice, out.stopped = complete, True
                    break
            else:
                if held and not generated:
                    mask = self._heal_mask(held).to(logits.device)
                    logits = logits.masked_fill(~mask, float("-inf"))
                token = int(self.torch.argmax(logits))
                if token in self.stop_ids:
                    out.stopped = True
                    break
            generated.append(token)
            if trie is None or lead:
                stream.update(self.tokenizer.decode(generated, skip_special_tokens=True))
            if trie is not None:
                allowed, complete = trie.step(generated)
                if complete is not None and not allowed:
                    out.choice = complete
                    if not lead:
                        break
                    trie = None  # the lead string is in place: continue freely
            if trie is None and len(generated) >= budget:
                break
            logits = self._forward([token], cache)
            in_cache.append(token)
        if trie is not None and out.choice is None and not lead:
            out.choice = trie.step(generated)[1]
        self.prefixes.store(key, in_cache, cache)
        return out


def _validate(request: ChatRequest) -> None:
    if not request.messages:
        raise ValueError("request has no messages")
    for m in request.messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ValueError(f"malformed chat message {m!r}: need {{'role': str, 'content': str}}")
    if request.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {request.max_new_tokens}")

