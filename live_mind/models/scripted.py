"""A deterministic chat model for tests (no weights, no randomness).

``ScriptedModel`` answers from a list of rules or a callable, and charges every call a
fixed, configurable number of seconds so clock-dependent behaviour is exactly
reproducible.  Token counts are whitespace word counts of the rendered prompt and the
reply -- crude, but deterministic and monotone in prompt length, which is all tests
need.  A request's ``on_token`` receives the reply word by word; a ``stop`` signal set
before the call gives an empty, cancelled completion.

``backend = "scripted"`` entries of a models file build ``configured_scripted_model``, so
the scripts can be driven end to end without weights: ``rules`` maps regexes on the last
user message to replies, ``sleep`` really sleeps per call (a run slow enough to
interrupt), ``max_prompt_words`` raises ``ContextLengthExceeded`` above that prompt
size, ``fail_on`` raises ``ModelError`` (so does ``fail_on_file``: a file holding such
a regex, used while it exists), ``unavailable_while`` names a file whose existence
makes every call raise ``BackendUnavailable`` (an outage a test switches on and off),
``marker`` names a file appended to when the model is *built* -- so a test can prove
that validation failed before any load -- and ``reuses_prefixes`` makes the modelled
cache of ``--timing`` runs (``cachemodel.py``) treat the model as one that keeps a
question's prefixes (``prompt_ids``: one id per counted word).
"""

from __future__ import annotations

import os
import re
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

from .base import (
    DRAFT_ACCEPTED,
    DRAFT_TOKENS,
    BackendUnavailable,
    Capabilities,
    ChatModel,
    ChatRequest,
    Completion,
    ContextLengthExceeded,
    ModelError,
    stop_requested,
)

Responder = Callable[[ChatRequest], str]


def render_prompt_words(request: ChatRequest) -> int:
    """Deterministic stand-in for a prompt token count."""
    words = sum(len(m["content"].split()) + 2 for m in request.messages)
    return words + len(request.assistant_prefix.split())


def prompt_word_ids(request: ChatRequest) -> list[int]:
    """Deterministic stand-in token ids, one per counted word (``render_prompt_words``):
    each message is a role mark, its words and an end mark; then the priming prefix."""
    words = [w for m in request.messages for w in (f"<{m['role']}>", *m["content"].split(), "</>")]
    words += request.assistant_prefix.split()
    return [zlib.crc32(w.encode("utf-8")) for w in words]


def verify_draft(completion: Completion, draft: str) -> Completion:
    """The scripted model's draft verification (``ChatRequest.draft``): the draft's words
    that begin its own reply are kept -- the whole draft is read with the prompt in one pass -- and only the
    rest of the reply counts as generated."""
    reply, drafted = completion.text.split(), draft.split()
    kept = 0
    while kept < min(len(reply), len(drafted)) and reply[kept] == drafted[kept]:
        kept += 1
    return Completion(completion.text, completion.prompt_tokens + len(drafted), len(reply) - kept, completion.seconds,
                      completion.cached_tokens, completion.finish_reason,
                      {**completion.extra, DRAFT_TOKENS: len(drafted), DRAFT_ACCEPTED: kept})


@dataclass
class ScriptedModel(ChatModel):
    """Replies from ``rules`` -- (regex on the last user message, reply) pairs, first
    match wins -- or from ``responder``; ``default`` otherwise.

    ``seconds`` is charged per call (a float, or a list consumed one per call).
    Every request seen is appended to ``calls`` for assertions.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        prefill_only=True, choices=True, lead_choices=True, streaming=True, stop=True, draft_verify=True, extends_context=True)

    name: str = "scripted"
    rules: list[tuple[str, str]] = field(default_factory=list)
    default: str = "The answer is (A)."
    responder: Responder | None = None
    seconds: float | list[float] = 1.0
    fail_on: str | None = None
    reuses_prefixes: bool = False  # for the modelled cache (cachemodel.py); no cache is kept
    calls: list[ChatRequest] = field(default_factory=list)

    def prompt_ids(self, request: ChatRequest) -> list[int]:
        return prompt_word_ids(request)

    def _reply(self, request: ChatRequest) -> str:
        if self.responder is not None:
            return self.responder(request)
        last_user = next((m["content"] for m in reversed(request.messages) if m["role"] == "user"), "")
        for pattern, reply in self.rules:
            if re.search(pattern, last_user, re.S):
                return reply
        return self.default

    def _charge(self) -> float:
        if isinstance(self.seconds, list):
            return self.seconds[(len(self.calls) - 1) % len(self.seconds)]
        return float(self.seconds)

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        out = []
        for request in requests:
            self.calls.append(request)
            text = "" if request.prefill_only else self._reply(request)
            if self.fail_on and re.search(self.fail_on, request.messages[-1]["content"]):
                raise ModelError(f"scripted failure on {self.fail_on!r}")
            if request.choices:
                text = next((c for c in request.choices if text.strip().startswith(c)), request.choices[0])
            cancelled = stop_requested(request)
            if cancelled:
                text = ""
            elif request.on_token is not None:  # streamed word by word
                for piece in re.findall(r"\s*\S+\s*|\s+", text):
                    request.on_token(piece)
            completion = Completion(
                text=text,
                prompt_tokens=render_prompt_words(request),
                completion_tokens=0 if request.prefill_only else max(1, len(text.split())),
                seconds=self._charge(),
                finish_reason="cancelled" if cancelled else "stop",
            )
            out.append(verify_draft(completion, request.draft) if request.draft is not None and not cancelled else completion)
        return out


@dataclass
class ConfiguredScriptedModel(ScriptedModel):
    """``ScriptedModel`` plus the test knobs of a ``scripted`` entry (see the module notes)."""

    sleep: float = 0.0
    max_prompt_words: int | None = None
    unavailable_while: str | None = None
    fail_on_file: str | None = None

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        if self.unavailable_while and os.path.exists(self.unavailable_while):
            raise BackendUnavailable(f"{self.name}: backend switched off ({self.unavailable_while} exists)")
        if self.fail_on_file:
            try:
                with open(self.fail_on_file, encoding="utf-8") as handle:
                    self.fail_on = handle.read().strip() or None
            except FileNotFoundError:
                self.fail_on = None
        if self.sleep > 0:
            time.sleep(self.sleep)
        for request in requests:
            words = render_prompt_words(request)
            if self.max_prompt_words is not None and words > self.max_prompt_words:
                raise ContextLengthExceeded(
                    f"{self.name}: prompt of {words} words exceeds the context of {self.max_prompt_words}"
                )
        return super().complete(requests)


def configured_scripted_model(
    *,
    name: str = "scripted",
    default: str = ScriptedModel.default,
    rules: dict[str, str] | None = None,
    seconds: float = 1.0,
    sleep: float = 0.0,
    fail_on: str | None = None,
    max_prompt_words: int | None = None,
    unavailable_while: str | None = None,
    fail_on_file: str | None = None,
    marker: str | None = None,
    reuses_prefixes: bool = False,
) -> ConfiguredScriptedModel:
    """A ``scripted`` entry's model; writes one line to ``marker`` first when it is set."""
    if marker:
        with open(os.path.expanduser(marker), "a", encoding="utf-8") as handle:
            handle.write(f"built {name} in process {os.getpid()}\n")
    return ConfiguredScriptedModel(
        name=name, default=default, rules=[(str(p), str(r)) for p, r in (rules or {}).items()], seconds=float(seconds),
        fail_on=fail_on or None, sleep=sleep, max_prompt_words=max_prompt_words, reuses_prefixes=reuses_prefixes,
        unavailable_while=os.path.expanduser(unavailable_while) if unavailable_while else None,
        fail_on_file=os.path.expanduser(fail_on_file) if fail_on_file else None,
    )
