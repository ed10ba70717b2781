"""The chat-model protocol every backend implements (paper §3: the inference and output models).

One role, one small protocol, in the style of simple-evals' samplers: a batch of
``ChatRequest`` in, one ``Completion`` per request out.  A request is a chat message
list plus the few knobs the LiveMind protocol needs:

* ``assistant_prefix`` -- *response priming*: the assistant turn is opened with this
  text (after the chat template's generation prompt) and the model continues it.
  Small models such as SmolLM2-135M rarely start a reply with ``action NAME.`` on their
  own; starting the turn for them with ``"action "`` fixes the format (issue 2).
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
from typing import Protocol, Sequence, runtime_checkable

Message = dict[str, str]
"""One chat message: ``{"role": "system"|"user"|"assistant", "content": str}``."""


class ModelError(RuntimeError):
    """A backend failed to produce a completion (after its own retries)."""


class ContextLengthExceeded(ModelError):
    """The prompt does not fit the model's context window."""


class UnsupportedFeature(ModelError):
    """The backend cannot honour a request option (e.g. ``choices``)."""


@dataclass
class ChatRequest:
    """One generation request: a chat plus LiveMind-specific options."""

    messages: list[Message]
    max_new_tokens: int = 512
    assistant_prefix: str = ""
    cache_key: str | None = None
    choices: list[str] | None = None
    lead_choices: list[str] | None = None
    prefill_only: bool = False


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
