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
vLLM backend's streaming-input sessions (``vllm/sessions.py``) do both.

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
from typing import Any, Callable, ClassVar, Protocol, Sequence

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
    draft: str | None = None
    """A reply drafted earlier (speculation, ``methods/predgen.py``): a backend with
    ``Capabilities.draft_verify`` checks it against this request in one pass, keeps the
    longest prefix it would have generated itself and generates only the rest; the
    completion's ``extra`` then holds ``DRAFT_TOKENS`` and ``DRAFT_ACCEPTED``."""


DRAFT_TOKENS = "draft_tokens"
DRAFT_ACCEPTED = "draft_accepted"
"""``Completion.extra`` keys of a verified draft: its tokens, and how many were kept."""


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
    draft_verify: bool = False
    """A request's ``draft`` is verified in one pass and its kept prefix not generated again."""
    extends_context: bool = False
    """A request whose prompt extends the previous one (its prompt + reply + more) is read
    into the KV cache in place: only the new tokens are computed (``methods/continuous.py``)."""


class ChatModel:
    """The whole contract of a backend, with the default of every member.

    A backend subclasses this and overrides ``complete``; every other member is optional
    and its default says "this backend cannot": callers ask the model (or the functions
    below, which give the same defaults for a plain object that only has ``complete``),
    never probe it.  Options that change how a model runs (KV reuse, batched decoding,
    the async engine) are constructor arguments, decided before the model loads.

    ====================  ========================================================
    member                default / meaning
    ====================  ========================================================
    ``name``              ``"model"``: shown in logs and records
    ``capabilities``      ``Capabilities()`` (nothing): what requests may ask for
    ``entry_capabilities``  the class's ``capabilities``: those of one entry's params
    ``complete``          required: a batch of requests -> completions, in order
    ``native_async``      ``False``: ``True`` when ``acomplete`` is the backend's own
    ``acomplete``         ``complete`` of one request (used only if ``native_async``)
    ``reuses_prefixes``   ``False``: a question's later calls reuse its KV prefix
    ``prompt_ids``        ``None``: the prompt's token ids (for the modelled cache)
    ``report_status``     nothing to report: takes a ``callback(text | None)``
    ====================  ========================================================

    Streaming (``ChatRequest.on_token``) and stopping (``ChatRequest.stop``) are request
    options a backend honours inside ``complete`` when its capabilities say so.
    """

    name: str = "model"
    capabilities: ClassVar[Capabilities] = Capabilities()
    reuses_prefixes: bool = False
    native_async: bool = False

    @classmethod
    def entry_capabilities(cls, params: dict[str, Any]) -> Capabilities:
        """The capabilities a model entry's parameters give (default: the class's own);
        a backend whose entries change them (vLLM's streaming sessions) overrides this."""
        return cls.capabilities

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        raise NotImplementedError

    async def acomplete(self, request: ChatRequest) -> Completion:
        """One request on the backend's own async engine; the default runs ``complete``
        (on the caller's event loop: ``models/aio.py`` gives models without a native path
        a worker thread instead)."""
        return self.complete([request])[0]

    def prompt_ids(self, request: ChatRequest) -> list[int] | None:
        """The token ids of the request's rendered prompt; ``None``: not known here."""
        return None

    def report_status(self, callback: Callable[[str | None], None] | None) -> None:
        """Where to report a waiting state (a text, then ``None`` once it is over); a
        plain backend has none to report."""


# A plain object with a ``complete`` method (a test double) is a model too: these give the
# contract's defaults for what it does not define.  They are the only place that looks.

def native_async(model: Any) -> bool:
    """Whether ``model``'s ``acomplete`` is its own engine's (continuous batching)."""
    if isinstance(model, ChatModel):
        return bool(model.native_async)
    return callable(getattr(model, "acomplete", None))


def reuses_prefixes(model: Any) -> bool:
    """Whether the model keeps a question's prefixes for its later calls."""
    return bool(getattr(model, "reuses_prefixes", False))


def prompt_ids(model: Any, request: ChatRequest) -> list[int] | None:
    """The model's token ids of ``request``'s prompt, ``None`` when it cannot tell."""
    found = getattr(model, "prompt_ids", None)
    return None if found is None else found(request)


def report_status(model: Any, callback: Callable[[str | None], None] | None) -> None:
    """Hand ``callback`` to the model's status reporting (a no-op for a plain one)."""
    found = getattr(model, "report_status", None)
    if found is not None:
        found(callback)


def model_capabilities(model: Any) -> Capabilities:
    """What ``model`` (a loaded model, or a backend class) declares it can do; nothing
    when it declares none."""
    found = getattr(model, "capabilities", None)
    return found if isinstance(found, Capabilities) else Capabilities()


def entry_capabilities(cls: type, params: dict[str, Any]) -> Capabilities:
    """The capabilities backend class ``cls`` has for an entry with ``params``."""
    if isinstance(cls, type) and issubclass(cls, ChatModel):
        return cls.entry_capabilities(params)
    return model_capabilities(cls)


def model_name(model: Any) -> str:
    """The model's name (``"model"`` when it has none)."""
    return str(getattr(model, "name", "model"))


class ModelWrapper(ChatModel):
    """The one delegation pattern: a model standing in front of another (``inner``).

    Every member of the contract is passed to ``inner`` explicitly; a wrapper overrides
    what it changes (the outage guard: ``complete``/``acomplete`` and ``report_status``;
    the server's shared model: ``complete``) and nothing else is forwarded: no
    ``__getattr__``, so what a caller can reach is exactly the contract."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    # The inner model's members, read each time (a backend may change them, e.g. on a restart).
    name = property(lambda self: model_name(self.inner))  # type: ignore[assignment]
    capabilities = property(lambda self: model_capabilities(self.inner))  # type: ignore[assignment]
    native_async = property(lambda self: native_async(self.inner))  # type: ignore[assignment]
    reuses_prefixes = property(lambda self: reuses_prefixes(self.inner))  # type: ignore[assignment]

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return self.inner.complete(requests)

    async def acomplete(self, request: ChatRequest) -> Completion:
        return await self.inner.acomplete(request)

    def prompt_ids(self, request: ChatRequest) -> list[int] | None:
        return prompt_ids(self.inner, request)

    def report_status(self, callback: Callable[[str | None], None] | None) -> None:
        report_status(self.inner, callback)


def reject_lead_choices(requests: Sequence[ChatRequest], backend: str) -> None:
    """For backends that cannot force a reply's opening: refuse ``lead_choices``."""
    if any(r.lead_choices for r in requests):
        raise UnsupportedFeature(f"the {backend} backend cannot force a reply's opening (lead_choices); run with --no-constrain_actions")


def stop_requested(request: ChatRequest) -> bool:
    """Whether the request's stop signal is set."""
    return request.stop is not None and request.stop.is_set()


def error_line(exc: BaseException, limit: int | None = None) -> str:
    """An exception as one line (its first line, at most ``limit`` characters), or its
    type's name when it has no text: for one-line error messages."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
