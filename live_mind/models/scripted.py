"""A deterministic chat model for tests (no weights, no randomness).

``ScriptedModel`` answers from a list of rules or a callable, and charges every call a
fixed, configurable number of seconds so clock-dependent behaviour is exactly
reproducible.  Token counts are whitespace word counts of the rendered prompt and the
reply -- crude, but deterministic and monotone in prompt length, which is all tests
need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .base import ChatRequest, Completion, ModelError

Responder = Callable[[ChatRequest], str]


def render_prompt_words(request: ChatRequest) -> int:
    """Deterministic stand-in for a prompt token count."""
    words = sum(len(m["content"].split()) + 2 for m in request.messages)
    return words + len(request.assistant_prefix.split())


@dataclass
class ScriptedModel:
    """Replies from ``rules`` -- (regex on the last user message, reply) pairs, first
    match wins -- or from ``responder``; ``default`` otherwise.

    ``seconds`` is charged per call (a float, or a list consumed one per call).
    Every request seen is appended to ``calls`` for assertions.
    """

    name: str = "scripted"
    rules: list[tuple[str, str]] = field(default_factory=list)
    default: str = "The answer is (A)."
    responder: Responder | None = None
    seconds: float | list[float] = 1.0
    fail_on: str | None = None
    calls: list[ChatRequest] = field(default_factory=list)

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
            out.append(
                Completion(
                    text=text,
                    prompt_tokens=render_prompt_words(request),
                    completion_tokens=0 if request.prefill_only else max(1, len(text.split())),
                    seconds=self._charge(),
                )
            )
        return out
