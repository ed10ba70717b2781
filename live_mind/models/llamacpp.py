"""llama.cpp backend, in process through llama-cpp-python.

For laptops: GGUF weights run by llama.cpp's quantized CPU kernels.  Decoding is greedy
(temperature 0, ``repeat_penalty`` 1.0) and stops at the model's end-of-generation
tokens (``<|im_end|>`` for SmolLM2, ``<|eot_id|>`` for Llama-3).

Prompt: the chat is rendered with the Hugging Face tokenizer's chat template (from the
same GGUF by default), plus ``assistant_prefix`` for response priming, then tokenized
exactly as llama.cpp's own server tokenizes a text prompt (BOS only if the model asks
for it, special tokens parsed).  So this backend and ``smollm2-135m-server`` (the
OpenAI backend in ``completions`` mode against ``python -m llama_cpp.server``) feed the
model identical token ids.

KV-cache reuse: a ``Llama`` object keeps the tokens of its last evaluation and, when the
next prompt starts with the same tokens, evaluates only the rest (its ``generate``
prints "prefix-match hit" in verbose mode).  LiveMind's next inference prompt extends
the previous one by a sentence, so most of it is reused.  ``cached_tokens`` reports that
reused length, computed from the same rule llama-cpp-python applies (the longest common
prefix with the tokens it holds, minus one when the whole prompt matches, because the
last prompt token is evaluated again to get fresh logits).  There is one cache per
model object: interleaving questions (the batched solver) reuses only what the
previous prompt shares, which the reported counts show honestly.

Prefix healing (as in ``hf/model.py``, one rule: ``mapping.healing_split``; ``heal_prefix=False`` turns it off): trailing
whitespace of the priming prefix is held back and the first generated token must
start with it.  Done in two steps so that the grammar does not slow every step: the
first token is sampled under a one-rule grammar, then greedy decoding continues from
prompt + that token without constraint (the KV cache makes the second step free of
re-prefill).  The result is the greedy output under a first-token constraint -- what
the transformers backend computes.  The held whitespace is cut from the returned text.

Threads: ``OMP_WAIT_POLICY`` defaults to ``PASSIVE`` here (export ``ACTIVE`` to override)
-- with spinning OpenMP workers, two threads on two busy cores decoded 1.2 tokens/s
instead of 30 in our measurements.

Streaming and stopping (``ChatRequest.on_token`` / ``stop``): such a request runs
``create_completion(stream=True)`` and reads its chunks one by one; a set stop signal
closes the stream, which ends generation (finish reason ``"cancelled"``).  Chunks carry
no usage counts, so ``completion_tokens`` is then the number of tokens of the returned
text, re-tokenized (``extra["tokens_counted_from_text"]``).

Out of memory (a ``MemoryError``, or llama.cpp's failure to allocate a buffer) is an
infrastructure failure: ``BackendUnavailable``, waited out by the run's outage guard
rather than recorded against the question.

``choices`` are enforced with a GBNF grammar.  A batch is run one request after the
other; every completion carries the batch's wall time (``base.py``), its own time is in
``extra["request_seconds"]``.
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

from . import base
from .base import (
    BackendUnavailable,
    ChatModel,
    ChatRequest,
    Completion,
    ContextLengthExceeded,
    ModelError,
    error_line,
    reject_lead_choices,
    stop_requested,
)
from .mapping import (
    chat_prompt_text,
    choices_grammar,
    common_prefix_length,
    healing_grammar,
    healing_split,
    load_chat_tokenizer,
    strip_held,
    strip_leading_bos,
)
from .streaming import TextStream, read_stream


def _chunk_pieces(chunk: dict) -> list[tuple[str | None, str | None]]:
    """(text, finish reason) of one streamed llama.cpp completion chunk."""
    choice = chunk["choices"][0]
    return [(choice.get("text"), choice.get("finish_reason"))]
def out_of_memory(message: str) -> bool:
    """Whether a llama.cpp error message reports an allocation failure."""
    text = message.lower()
    return "out of memory" in text or "failed to allocate" in text or "unable to allocate" in text


def reused_prefix(held: Sequence[int], prompt: Sequence[int]) -> int:
    """Prompt tokens llama-cpp-python takes from its KV cache instead of evaluating."""
    if not held:
        return 0
    common = common_prefix_length(held, prompt)
    if common == len(prompt):
        # The whole prompt is held: either it samples at once (same prompt, nothing
        # generated after it) or it re-evaluates the last token.
        return common if len(held) == len(prompt) else common - 1
    return common


class LlamaCppChatModel(ChatModel):
    """A ``ChatModel`` over an in-process ``llama_cpp.Llama``."""

    capabilities = base.Capabilities(prefill_only=True, choices=True, streaming=True, stop=True, threads_option="n_threads",
                                     extends_context=True, draft_verify=True)

    def __init__(
        self,
        gguf_path: str,
        *,
        tokenizer: str | Any | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        n_gpu_layers: int = 0,
        seed: int = 0,
        verbose: bool = False,
        heal_prefix: bool = True,
        name: str | None = None,
    ) -> None:
        # llama.cpp's OpenMP workers spin while waiting by default; on a busy or small
        # machine that starves the other thread and decoding slows twentyfold.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        from llama_cpp import Llama

        self.name = name or os.path.basename(gguf_path)
        self.llm = Llama(
            model_path=gguf_path,
            n_ctx=n_ctx,
            n_threads=n_threads or max(1, os.cpu_count() or 1),
            n_batch=n_batch,
            n_gpu_layers=n_gpu_layers,
            seed=seed,
            verbose=verbose,
        )
        source = gguf_path if tokenizer is None else tokenizer
        self.tokenizer = load_chat_tokenizer(source) if isinstance(source, str) else source
        self.n_ctx = n_ctx
        self.heal_prefix = heal_prefix

    def prompt_tokens(self, request: ChatRequest) -> list[int]:
        """Token ids of the rendered chat, as llama.cpp's server would tokenize the text."""
        prefix, _ = healing_split(request, self.heal_prefix)
        text = strip_leading_bos(chat_prompt_text(self.tokenizer, request.messages, prefix), self.tokenizer)
        tokens = list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))
        bos = self.llm.token_bos()
        if self.llm._model.add_bos_token() and bos >= 0 and tokens[:1] != [bos]:
            tokens.insert(0, bos)
        return tokens

    reuses_prefixes = True
    """The KV cache of the last evaluation is always reused (the modelled cache follows)."""

    def prompt_ids(self, request: ChatRequest) -> list[int]:
        return self.prompt_tokens(request)

    @staticmethod
    def _grammar(text: str | None) -> Any:
        if not text:
            return None
        from llama_cpp import LlamaGrammar

        return LlamaGrammar.from_string(text, verbose=False)

    def _first_token(self, tokens: list[int], held: str) -> int:
        """The greedy first token among those whose text starts with ``held``."""
        steps = self.llm.generate(tokens, temp=0.0, top_k=1, repeat_penalty=1.0,
                                  grammar=self._grammar(healing_grammar(held)))
        try:
            return int(next(steps))
        finally:
            steps.close()

    def _generate(self, tokens: list[int], request: ChatRequest, held: str, max_tokens: int) -> tuple[str, int, str]:
        """(text, completion tokens, finish reason) of greedy decoding, healed when ``held``."""
        stream = TextStream(request.on_token, held)
        first: list[int] = []
        first_text = ""
        if held:
            if stop_requested(request):
                return "", 0, "cancelled"
            first = [self._first_token(tokens, held)]
            first_text = self.llm.detokenize(first, prev_tokens=tokens).decode("utf-8", errors="ignore")
            stream.update(first_text)
            max_tokens -= 1
            if max_tokens <= 0:
                text = strip_held(first_text, held)
                stream.finish(text)
                return text, 1, "length"
        grammar = choices_grammar(request.choices) if request.choices else None
        options = dict(max_tokens=max_tokens, temperature=0.0, top_k=1, repeat_penalty=1.0, grammar=self._grammar(grammar))
        if request.on_token is None and request.stop is None:
            result = self.llm.create_completion(tokens + first, **options)
            choice = result["choices"][0]
            new_text, count, reason = choice["text"], int(result["usage"]["completion_tokens"]), choice.get("finish_reason")
        else:
            new_text, count, reason = self._stream(tokens + first, options, request, stream, first_text)
        text = strip_held(first_text + new_text, held)
        stream.finish(text)
        finish = reason if reason == "cancelled" else ("length" if reason == "length" else "stop")
        return text, len(first) + count, finish

    def _stream(self, tokens: list[int], options: dict, request: ChatRequest, stream: TextStream,
                shown_before: str) -> tuple[str, int, str | None]:
        """Streamed ``create_completion``: (text, its token count, finish reason)."""
        chunks = self.llm.create_completion(tokens, stream=True, **options)
        pieces, reason = read_stream(chunks, request, stream, _chunk_pieces, shown_before)
        text = "".join(pieces)
        count = len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)) if text else 0
        return text, count, reason

    def _verify(self, tokens: list[int], draft_text: str) -> tuple[list[int], list[int]]:
        """Draft verification (``ChatRequest.draft``): read the prompt and the whole draft in
        one pass with logits at every draft position, and keep the longest draft prefix
        whose every token is the greedy choice after what precedes it.  Returns ``(draft
        ids, kept ids)``; the KV cache then holds the prompt and the kept prefix."""
        import numpy as np

        llm = self.llm
        draft = list(llm.tokenize(draft_text.encode("utf-8"), add_bos=False, special=False))
        draft = draft[: max(0, self.n_ctx - len(tokens) - 2)]
        common = reused_prefix(list(llm._input_ids), tokens)
        rest, sequence = len(tokens) - common, tokens[common:] + draft
        llm.n_tokens = common
        llm._ctx.kv_cache_seq_rm(-1, common, -1)
        greedy: list[int] = []  # greedy[k]: the model's token after the prompt and draft[:k]
        for i in range(0, len(sequence), llm.n_batch):
            batch = sequence[i:i + llm.n_batch]
            llm._batch.set_batch(batch=batch, n_past=llm.n_tokens, logits_all=True)
            llm._ctx.decode(llm._batch)
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(batch), llm.n_vocab()))
            greedy += [int(t) for j, t in enumerate(logits.argmax(axis=1)) if i + j >= rest - 1]
            llm.input_ids[llm.n_tokens:llm.n_tokens + len(batch)] = batch
            llm.n_tokens += len(batch)
        kept = 0
        while kept < len(draft) and greedy[kept] == draft[kept]:
            kept += 1
        llm.n_tokens = len(tokens) + kept  # forget the rejected draft tokens
        llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1)
        llm._requires_eval = True  # the context's logits are the draft's last row: recompute before sampling
        return draft, draft[:kept]

    def _complete_drafted(self, request: ChatRequest, tokens: list[int], cached: int, max_tokens: int) -> Completion:
        """A request with a ``draft``: verify it, then generate greedily after the kept prefix."""
        start = time.perf_counter()
        draft, kept = self._verify(tokens, request.draft or "")
        kept_text = self.llm.detokenize(kept, prev_tokens=tokens).decode("utf-8", errors="ignore")
        result = self.llm.create_completion(tokens + kept, max_tokens=max(1, max_tokens - len(kept)), temperature=0.0,
                                            top_k=1, repeat_penalty=1.0)
        choice = result["choices"][0]
        seconds = time.perf_counter() - start
        return Completion(text=kept_text + choice["text"], prompt_tokens=len(tokens) + len(draft),
                          completion_tokens=int(result["usage"]["completion_tokens"]), seconds=seconds,
                          cached_tokens=cached, finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
                          extra={"request_seconds": seconds, base.DRAFT_TOKENS: len(draft), base.DRAFT_ACCEPTED: len(kept)})

    def _complete_one(self, request: ChatRequest) -> Completion:
        tokens = self.prompt_tokens(request)
        _, held = healing_split(request, self.heal_prefix)
        if len(tokens) + 1 > self.n_ctx:
            raise ContextLengthExceeded(f"prompt of {len(tokens)} tokens does not fit n_ctx {self.n_ctx}")
        max_tokens = max(1, min(request.max_new_tokens, self.n_ctx - len(tokens)))
        cached = reused_prefix(list(self.llm._input_ids), tokens)
        if request.draft and not (request.choices or held or request.on_token or request.stop):
            return self._complete_drafted(request, tokens, cached, max_tokens)
        start = time.perf_counter()
        try:
            text, completion_tokens, finish = self._generate(tokens, request, held, max_tokens)
        except ValueError as exc:
            message = error_line(exc)
            if "context" in message:
                raise ContextLengthExceeded(message) from exc
            raise ModelError(f"llama.cpp failed: {message}") from exc
        except (MemoryError, RuntimeError) as exc:
            message = error_line(exc)
            if isinstance(exc, MemoryError) or out_of_memory(message):
                raise BackendUnavailable(f"llama.cpp ran out of memory: {message}") from exc
            raise
        seconds = time.perf_counter() - start
        return Completion(
            text=text,
            prompt_tokens=len(tokens),
            completion_tokens=completion_tokens,
            seconds=seconds,
            cached_tokens=cached,
            finish_reason=finish,
            extra={"request_seconds": seconds,
                   **({"tokens_counted_from_text": True} if request.on_token or request.stop else {})},
        )

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        reject_lead_choices(requests, "llama.cpp")
        start = time.perf_counter()
        completions = [self._complete_one(r) for r in requests]
        wall = time.perf_counter() - start
        for completion in completions:
            completion.seconds = wall
        return completions
