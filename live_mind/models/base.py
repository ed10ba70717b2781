"""The chat-model protocol every backend implements (paper §3: the inference and output models).

One role, one small protocol, in the style of simple-evals' samplers: a batch of
``ChatRequest`` in, one ``Completion`` per request out.  A request is a chat message
list plus the few knobs the LiveMind protocol needs:

* ``assistant_prefix`` -- *response priming*: the assistant turn is opened with this
  text (after the chat template's generation prompt) and the model continues it.
  Small models such as SmolLM2-135M rarely start a reply with ``action NAME.`` on their
  own; starting the turn for them with ``"action "`` fixes the format.
  The returned ``Completion.text`` is the continuation only, without the prefix.
* ``cache_key`` -- requests with the same key belong to one question; a backend that
  keeps KV caches may reuse the previous call's cache for the common prefix.
* ``choices`` -- when set, the output is constrained to exactly one of these strings
  (the constrained final answer).  Backends that cannot constrain raise
  ``UnsupportedFeature``.
* ``lead_choices`` -- when set, the output must *begin* with one of these strings and
  continues freely after it (used to force a valid action name right after the
  ``"action"`` priming prefix).  Same support rules as ``choices``.
* ``prefill_only`` -- only read the prompt into the prefix cache of ``cache_key`` and
  generate nothing (a backend that must sample generates one token); used to prefill the
  text the user has typed so far while the model is idle (``prefill.py``).

Streaming and stopping (used by the live session, ``live.py``):

* ``on_token`` -- called with each new piece of the reply's text while it is generated;
  the pieces, joined, are exactly ``Completion.text`` (a backend that cannot stream
  never calls it, and the caller shows the text when the call returns).
* ``stop`` -- a ``threading.Event``-like signal (anything with ``is_set()``) checked
  between decoding steps; once set, generation ends early and the completion's
  ``finish_reason`` is ``"cancelled"``.  A backend that cannot stop runs to the end.
* ``on_restart`` -- called (with a one-line reason) when a call that has already
  streamed text failed on the backend's side and is about to be retried from the start:
  the caller says the answer restarts and forgets what it showed.  Without it, such a
  call is not retried (``StreamInterrupted``): text is never shown twice
  (``models/outage.py``).

Support: transformers, llama.cpp (in process) and OpenAI-compatible servers stream and
stop; the scripted test model streams word by word and stops at once.  vLLM's offline
engine (``LLM.generate``) returns only whole batches: it neither streams nor stops; the
vLLM backend's streaming-input sessions (``vllm_sessions.py``) do both.

Timing is measured by the backend around the real generation call, so the simulated
clock (``clock.py``) can charge each call its true cost.  A backend that runs a batch as
one engine call (vLLM, llama.cpp, concurrent HTTP requests) gives every completion the
wall time of that call; the transformers backend runs requests one after another and
gives each its own time.  The real-time solver sends one request per call, where both
conventions agree (with ``--concurrency`` it batches several, and then charges modelled
times only); the batched solver reports tokens, not seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, Sequence, runtime_checkable

Message = dict[str, str]
"""One chat message: ``{"role": "system"|"user"|"assistant", "content": str}``."""


class ModelError(RuntimeError):
    """A backend failed to produce a completion (after its own retries)."""


class ContextLengthExceeded(ModelError):
    """The prompt does not fit the model's context window."""


class UnsupportedFeature(ModelError):
    """The backend cannot honour a request option (e.g. ``choices``)."""


class BackendUnavailable(RuntimeError):
    """An infrastructure failure: the engine or server is away (connection refused or
    reset, timeout, HTTP 5xx or 429, an engine that died or ran out of memory).

    Deliberately *not* a ``ModelError``: it says nothing about the question, so it is
    never recorded against one.  The caller waits for the backend to come back (within
    an outage budget) or stops the run resumably."""


class OutageExceeded(BackendUnavailable):
    """The backend stayed away longer than the run's outage budget (``--max_outage``)."""


class StreamInterrupted(ModelError):
    """A call failed after streaming part of its reply, and its caller cannot be told
    that the answer restarts (``ChatRequest.on_restart``): it is not retried, so no text
    is shown twice."""


class StopSignal(Protocol):
    """What ``ChatRequest.stop`` needs: ``threading.Event`` has it."""

    def is_set(self) -> bool:
        ...


@dataclass
class ChatRequest:
    """One generation request: a chat plus LiveMind-specific options."""

    messages: list[Message]
    max_new_tokens: int = 512
    assistant_prefix: str = ""
    cache_key: str | None = None
    choices: list[str] | None = None
    lead_choices: list[str] | None = None
    on_token: Callable[[str], None] | None = None
    stop: StopSignal | None = None
    prefill_only: bool = False
    on_restart: Callable[[str], None] | None = None


@dataclass
class Completion:
    """What a backend returns for one request."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    cached_tokens: int = 0
    finish_reason: str = "stop"
    extra: dict = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, declared once on its model class (``capabilities`` class
    attribute) and asked through ``models.capabilities.capabilities`` -- never inferred
    from the backend's name, so a new backend only declares its own set."""

    prefix_cache: bool = False
    """KV reuse across one question's calls can be switched on at load (``prefix_cache=``)."""
    prefill_only: bool = False
    """A ``prefill_only`` request fills a prefix cache the next call reuses (prefill while typing)."""
    choices: bool = False
    """``choices``: the output is constrained to one of several strings."""
    lead_choices: bool = False
    """``lead_choices``: the output is forced to begin with one of several strings."""
    streaming: bool = False
    """``on_token`` receives the reply while it is generated."""
    stop: bool = False
    """``stop`` ends generation between two decoding steps."""
    batch_decode: bool = False
    """Several plain requests of one ``complete`` call can share one batched decode (``batch_decode``)."""
    async_engine: bool = False
    """The constructor option ``async_engine=True`` gives the model a native ``acomplete``:
    an engine that batches the requests in flight continuously (``models/aio.py``)."""
    threads_option: str | None = None
    """The constructor option setting CPU threads (None: the backend has none)."""


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: ``complete`` maps a batch of requests to completions, in order."""

    name: str

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        ...


def reject_lead_choices(requests: Sequence[ChatRequest], backend: str) -> None:
    """For backends that cannot force a reply's opening: refuse ``lead_choices``."""
    if any(r.lead_choices for r in requests):
        raise UnsupportedFeature(f"the {backend} backend cannot force a reply's opening (lead_choices); run with --no-constrain_actions")


def stop_requested(request: ChatRequest) -> bool:
    """Whether the request's stop signal is set."""
    return request.stop is not None and request.stop.is_set()


class TextStream:
    """Feeds ``ChatRequest.on_token`` from the growing raw text of one reply.

    ``update`` takes the whole raw text so far; ``held`` (whitespace held back by prefix
    healing) is not part of the reply and never shown.  Text ending in a broken UTF-8
    character (U+FFFD from a partial byte sequence) waits for the next token.
    ``finish`` shows whatever of the final text was not shown yet.
    """

    def __init__(self, on_token: Callable[[str], None] | None, held: str = "") -> None:
        self.on_token, self.held, self.shown = on_token, held, ""

    def update(self, raw: str) -> None:
        if self.on_token is None:
            return
        if self.held and not raw.startswith(self.held):
            if self.held.startswith(raw):
                return
            text = raw
        else:
            text = raw[len(self.held):]
        if text.endswith("\ufffd") or not text.startswith(self.shown) or text == self.shown:
            return
        self.on_token(text[len(self.shown):])
        self.shown = text

    def finish(self, text: str) -> None:
        if self.on_token is not None and text.startswith(self.shown) and text != self.shown:
            self.on_token(text[len(self.shown):])
            self.shown = text


def read_stream(
    chunks: Iterable[Any], request: ChatRequest, stream: TextStream, pieces_of: Callable[[Any], Iterable[tuple[str | None, str | None]]],
    shown_before: str = "",
) -> tuple[list[str], str | None]:
    """Read a streamed reply until it ends or the request's stop signal is set.

    ``pieces_of(chunk)`` gives the chunk's ``(text piece, finish reason)`` pairs; each
    chunk's text goes to ``stream`` after ``shown_before`` (text decoded before the
    stream started).  Returns the text pieces and the finish reason (``"cancelled"``
    when stopped); the chunk iterator is closed either way, which ends the generation
    (llama.cpp) or the HTTP response (OpenAI-compatible servers)."""
    pieces: list[str] = []
    finish = None
    try:
        for chunk in chunks:
            if stop_requested(request):
                finish = "cancelled"
                break
            for piece, reason in pieces_of(chunk):
                pieces.append(piece or "")
                finish = reason or finish
            stream.update(shown_before + "".join(pieces))
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return pieces, finish


def error_line(exc: BaseException, limit: int | None = None) -> str:
    """An exception as one line (its first line, at most ``limit`` characters), or its
    type's name when it has no text: for one-line error messages."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
