"""OpenAI-compatible backend: vLLM serve, SGLang, TGI, llama.cpp server, OpenAI.

A batch is sent as concurrent HTTP requests (``max_concurrency`` worker threads), so a
cluster of replicas behind one endpoint serves LiveMind's batched solver without any
change to the toolkit.  Decoding is greedy (``temperature`` 0).

Reliability: the client's own retries are disabled and this module retries instead --
connection errors and timeouts, HTTP 429 and every 5xx -- with exponential backoff
``min(backoff_max, backoff_base * 2**attempt)`` (a server's ``Retry-After`` is honoured
up to ``backoff_max``).  Owning the loop makes retry counts and delays testable; each
completion records its ``retries`` in ``extra``.  When these retries are spent the
failure is an infrastructure one (``infrastructure_failure``): ``BackendUnavailable``,
which the run's outage guard (``outage.py``) waits out instead of recording it against
the question.  Other 4xx errors (a rejected request, a prompt over the context) fail at
once as a ``ModelError``, recorded with the question.

Response priming (``ChatRequest.assistant_prefix``) depends on what the server offers,
chosen by ``priming``:

* ``"completions"`` -- the chat template is applied here with a local tokenizer
  (``tokenizer = "embedded"``, a ``.gguf`` file or a folder) and the rendered prompt plus
  prefix goes to ``/v1/completions``.  Works with vLLM, SGLang, TGI and llama.cpp
  servers, and sends exactly the prompt the in-process backends use.  A BOS written by
  the template is stripped because servers add their own to text prompts.
  With ``heal_prefix`` (llama.cpp servers only: it sends a GBNF ``grammar``), trailing
  whitespace of the prefix is held back and the output must start with it, as the
  transformers and llama.cpp backends do (``mapping.split_for_healing``).
* ``"continue"`` -- the prefix is sent as a final assistant message with vLLM's
  ``continue_final_message`` (and ``add_generation_prompt`` false) in the request body.
* ``"none"`` -- plain chat; a request with a prefix raises ``UnsupportedFeature`` (run
  without ``--prime_actions``).  This is the only mode the OpenAI API itself supports.

``choices`` are sent as a llama.cpp grammar (``choice_mode = "grammar"``), vLLM's
``guided_choice`` or ``structured_outputs``; with ``"none"`` they raise
``UnsupportedFeature``.  Cached prompt tokens are read from
``usage.prompt_tokens_details.cached_tokens`` when the server reports them.
``affinity_header`` / ``affinity_field`` send the request's ``cache_key`` (one question)
as a header or body field for a session or consistent-hash router (``affinity.py``).

Streaming and stopping (``ChatRequest.on_token`` / ``stop``): such a request is sent
with ``stream=True`` and the text arrives chunk by chunk; a set stop signal closes the
response, which makes the server stop generating (finish reason ``"cancelled"``).
Token counts come from a usage chunk when the server sends one, else the completion
tokens are the number of text chunks (one per token on vLLM and llama.cpp servers;
``extra["usage_estimated"]``).  A call that has already streamed text is not retried
here: it raises ``BackendUnavailable`` and the outage guard says the answer restarts,
or refuses (``outage.py``) -- text is never shown twice.

The async path (``acomplete``, used by ``models.aio.acomplete`` when several questions
are in flight): ``openai.AsyncOpenAI`` with at most ``max_concurrency`` requests in
flight, the same request building, retries, backoff and error classification as the
synchronous path (``_call_args``, ``_retry_delay``); the server batches what is in flight.
``prefix_caching`` says whether the server keeps a question's earlier prompts (vLLM
serve with prefix caching, a llama.cpp server's slot cache): with a local ``tokenizer``
the modelled cache of ``--timing`` runs (``cachemodel.py``) follows it; without one
the server's reported count is kept.

The API key is read from the environment variable named by ``api_key_env`` at
construction and kept only in the client object.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any, Callable, Sequence

from .affinity import affinity_args, check_names
from .base import (
    BackendUnavailable,
    Capabilities,
    ChatModel,
    ChatRequest,
    Completion,
    ContextLengthExceeded,
    ModelError,
    UnsupportedFeature,
    error_line,
    reject_lead_choices,
)
from .mapping import (
    chat_prompt_text,
    choices_grammar,
    healing_grammar,
    healing_split,
    load_chat_tokenizer,
    strip_held,
    strip_leading_bos,
)
from .openai_errors import backoff_delay, infrastructure_failure, retry_after
from .streaming import TextStream, read_stream

PRIMING_MODES = ("completions", "continue", "none")
CHOICE_MODES = ("grammar", "guided_choice", "structured_outputs", "none")
NO_KEY = "no-key"
"""Placeholder key for local servers that need none (the client insists on one)."""


def _one_line(exc: Exception) -> str:
    return error_line(exc, 300)


class OpenAIChatModel(ChatModel):
    """A ``ChatModel`` over an OpenAI-compatible HTTP endpoint."""

    native_async = True  # acomplete: AsyncOpenAI, every request in flight at the server

    capabilities = Capabilities(choices=True, streaming=True, stop=True)

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_concurrency: int = 8,
        priming: str = "none",
        tokenizer: str | Any | None = None,
        choice_mode: str = "none",
        heal_prefix: bool = False,
        stop: Sequence[str] = (),
        extra_body: dict[str, Any] | None = None,
        prefix_caching: bool = False,
        affinity_header: str | None = None,
        affinity_field: str | None = None,
        name: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import openai

        if priming not in PRIMING_MODES:
            raise ValueError(f"priming must be one of {', '.join(PRIMING_MODES)}, got {priming!r}")
        if choice_mode not in CHOICE_MODES:
            raise ValueError(f"choice_mode must be one of {', '.join(CHOICE_MODES)}, got {choice_mode!r}")
        if priming == "completions" and tokenizer is None:
            raise ValueError("priming = 'completions' needs a tokenizer (e.g. tokenizer = \"embedded\")")
        if heal_prefix and priming != "completions":
            raise ValueError("heal_prefix needs priming = 'completions'")
        if max_concurrency < 1 or max_retries < 0:
            raise ValueError("max_concurrency must be >= 1 and max_retries >= 0")
        check_names(affinity_header, affinity_field)
        self.affinity = (affinity_header, affinity_field)
        api_key = NO_KEY
        if api_key_env:
            api_key = os.environ.get(api_key_env, "")
            if not api_key:
                raise ModelError(f"environment variable {api_key_env} (the API key) is not set")
        self.name = name or model
        self.model = model
        self.base_url = base_url
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_concurrency = max_concurrency
        self.priming = priming
        self.choice_mode = choice_mode
        self.heal_prefix = heal_prefix
        self.stop = list(stop)
        self.extra_body = dict(extra_body or {})
        self.sleep = sleep
        self.tokenizer = load_chat_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        self._openai = openai
        self._client_args = dict(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)
        self.client = openai.OpenAI(**self._client_args)
        self._async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.reuses_prefixes = prefix_caching

    # ------------------------------------------------------------------ request building

    def _choice_body(self, choices: list[str] | None) -> dict[str, Any]:
        if not choices:
            return {}
        if self.choice_mode == "grammar":
            return {"grammar": choices_grammar(choices)}
        if self.choice_mode == "guided_choice":
            return {"guided_choice": list(choices)}
        if self.choice_mode == "structured_outputs":
            return {"structured_outputs": {"choice": list(choices)}}
        raise UnsupportedFeature(f"model {self.name}: choices need choice_mode grammar, guided_choice or structured_outputs")

    def _read_stream(
        self, response: Any, request: ChatRequest, stream: TextStream, held: str, chat: bool
    ) -> tuple[str, Any, str]:
        """Text, usage and finish reason of a streamed response (closed early on ``stop``)."""
        usage = None

        def pieces_of(chunk: Any) -> list[tuple[str | None, str | None]]:
            nonlocal usage
            usage = getattr(chunk, "usage", None) or usage  # a library object (tokenizer, config, response): the attribute depends on its version
            return [(choice.delta.content if chat else choice.text, choice.finish_reason) for choice in chunk.choices or []]

        pieces, finish = read_stream(response, request, stream, pieces_of)
        if usage is None:
            usage = SimpleNamespace(prompt_tokens=0, completion_tokens=sum(1 for p in pieces if p), estimated=True)
        return strip_held("".join(pieces), held), usage, finish

    def _call_args(self, request: ChatRequest, streaming: bool) -> tuple[bool, dict[str, Any], str]:
        """(chat endpoint?, keyword arguments of ``create``, held healing whitespace)."""
        common_stream: dict[str, Any] = {"stream": True} if streaming else {}
        headers, routing = affinity_args(request.cache_key, *self.affinity)  # per-question router key
        body = {**self.extra_body, **routing, **self._choice_body(request.choices)}
        common: dict[str, Any] = dict(model=self.model, max_tokens=request.max_new_tokens, temperature=0.0)
        if headers:
            common["extra_headers"] = headers
        if self.stop:
            common["stop"] = self.stop
        if self.priming == "completions":
            prefix, held = healing_split(request, self.heal_prefix)
            if held:
                body["grammar"] = healing_grammar(held)
            prompt = chat_prompt_text(self.tokenizer, request.messages, prefix)
            prompt = strip_leading_bos(prompt, self.tokenizer)
            return False, dict(prompt=prompt, extra_body=body or None, **common, **common_stream), held
        messages = [dict(m) for m in request.messages]
        if request.assistant_prefix:
            if self.priming == "none":
                raise UnsupportedFeature(
                    f"model {self.name} cannot prime responses (priming = 'none'); run without --prime_actions "
                    "or set priming = 'completions' / 'continue' in the models file"
                )
            messages.append({"role": "assistant", "content": request.assistant_prefix})
            body.update(continue_final_message=True, add_generation_prompt=False)
        return True, dict(messages=messages, extra_body=body or None, **common, **common_stream), ""

    @staticmethod
    def _endpoint(client: Any, chat: bool) -> Any:
        return client.chat.completions if chat else client.completions

    @staticmethod
    def _parse(response: Any, chat: bool, held: str) -> tuple[str, Any, str]:
        """(text, usage, finish_reason) of a whole (not streamed) response."""
        choice = response.choices[0]
        text = (choice.message.content if chat else choice.text) or ""
        return strip_held(text, held), response.usage, choice.finish_reason

    def _send(self, request: ChatRequest, stream: TextStream | None = None) -> tuple[str, Any, str]:
        """One HTTP call: returns (text, usage, finish_reason)."""
        streaming = stream is not None and (request.on_token is not None or request.stop is not None)
        chat, kwargs, held = self._call_args(request, streaming)
        response = self._endpoint(self.client, chat).create(**kwargs)
        if streaming:
            stream.held = held
            return self._read_stream(response, request, stream, held, chat=chat)
        return self._parse(response, chat, held)

    # ------------------------------------------------------------------ retries

    def _retry_delay(self, exc: Exception, retries: int, stream: TextStream) -> float:
        """Seconds to wait before retrying after ``exc``; raises the error to report when
        the call must not be retried (shared by the sync and async paths): a refused
        request is a ``ModelError`` (recorded against the question), a server still away
        after the retries is ``BackendUnavailable`` (the run's outage guard waits)."""
        if isinstance(exc, (UnsupportedFeature, ModelError)):
            raise exc
        if infrastructure_failure(exc) and stream.shown:  # never resent here: the outage guard decides
            raise BackendUnavailable(f"{self.name} at {self.base_url}: failed after streaming part of the reply: "
                                     f"{_one_line(exc)}") from exc
        if not infrastructure_failure(exc):
            message = _one_line(exc)
            if "context" in message.lower() and ("length" in message.lower() or "exceed" in message.lower()):
                raise ContextLengthExceeded(f"{self.name}: {message}") from exc
            if not isinstance(exc, self._openai.OpenAIError):
                raise exc
            raise ModelError(f"{self.name}: request failed: {message}") from exc
        if retries >= self.max_retries:
            raise BackendUnavailable(
                f"{self.name} at {self.base_url}: request failed after {retries + 1} attempts: {_one_line(exc)}"
            ) from exc
        return backoff_delay(retries, self.backoff_base, self.backoff_max, retry_after(exc))

    @staticmethod
    def _completion(text: str, usage: Any, finish: str, seconds: float, retries: int) -> Completion:
        # a library object (tokenizer, config, response): the attribute depends on its version
        details = getattr(usage, "prompt_tokens_details", None) if usage is not None else None
        # a library object (tokenizer, config, response): the attribute depends on its version
        cached = getattr(details, "cached_tokens", None) if details is not None else None
        return Completion(
            text=text,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),  # a library object (tokenizer, config, response): the attribute depends on its version
            # a library object (tokenizer, config, response): the attribute depends on its version
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            seconds=seconds,
            cached_tokens=int(cached or 0),
            finish_reason=finish if finish in ("length", "cancelled") else "stop",
            extra={"retries": retries, "request_seconds": seconds,
                   # a library object (tokenizer, config, response): the attribute depends on its version
                   **({"usage_estimated": True} if getattr(usage, "estimated", False) else {})},
        )

    def _complete_one(self, request: ChatRequest) -> Completion:
        start = time.perf_counter()
        retries = 0
        stream = TextStream(request.on_token)
        while True:
            try:
                text, usage, finish = self._send(request, stream)
                break
            except Exception as exc:  # noqa: BLE001 - classified by _retry_delay
                self.sleep(self._retry_delay(exc, retries, stream))
                retries += 1
        stream.finish(text)
        return self._completion(text, usage, finish, time.perf_counter() - start, retries)

    # ------------------------------------------------------------------ the async path

    def prompt_ids(self, request: ChatRequest) -> list[int] | None:
        """The rendered prompt's token ids (local tokenizer; for the modelled cache);
        ``None`` without a local tokenizer: the engine's cache count stands."""
        if self.tokenizer is None:
            return None
        prefix, _ = healing_split(request, self.heal_prefix)
        text = strip_leading_bos(chat_prompt_text(self.tokenizer, request.messages, prefix), self.tokenizer)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _async_client(self) -> tuple[Any, asyncio.Semaphore]:
        """This event loop's ``AsyncOpenAI`` client and its ``max_concurrency`` gate
        (an async HTTP client belongs to the loop it runs on)."""
        loop = asyncio.get_running_loop()
        found = self._async_clients.get(loop)
        if found is None:
            found = self._async_clients[loop] = (self._openai.AsyncOpenAI(**self._client_args),
                                                 asyncio.Semaphore(self.max_concurrency))
        return found

    async def acomplete(self, request: ChatRequest) -> Completion:
        """One request on ``AsyncOpenAI``, at most ``max_concurrency`` in flight; the
        retries and error classification of the synchronous path.  A streamed request
        (``on_token``/``stop``) runs the synchronous path on a worker thread."""
        reject_lead_choices([request], "OpenAI-compatible")
        client, gate = self._async_client()
        async with gate:
            if request.on_token is not None or request.stop is not None:
                return await asyncio.to_thread(self._complete_one, request)
            start, retries, stream = time.perf_counter(), 0, TextStream(None)
            while True:
                try:
                    chat, kwargs, held = self._call_args(request, False)
                    text, usage, finish = self._parse(await self._endpoint(client, chat).create(**kwargs), chat, held)
                    break
                except Exception as exc:  # noqa: BLE001 - classified by _retry_delay
                    await asyncio.sleep(self._retry_delay(exc, retries, stream))
                    retries += 1
            return self._completion(text, usage, finish, time.perf_counter() - start, retries)

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Send the batch concurrently; every completion carries the batch's wall time."""
        reject_lead_choices(requests, "OpenAI-compatible")
        if not requests:
            return []
        start = time.perf_counter()
        workers = min(self.max_concurrency, len(requests))
        if workers == 1:
            completions = [self._complete_one(r) for r in requests]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                completions = list(pool.map(self._complete_one, requests))
        wall = time.perf_counter() - start
        for completion in completions:
            completion.seconds = wall
        return completions
