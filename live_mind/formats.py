"""Prompt formats: how the controller's memory becomes chat messages (paper §3.3).

A *format* turns (segments seen so far, kept actions) into the inference-stage chat and
(segments, options, kept actions) into the output-stage chat.  v1 has one format,
implemented by ``V1Format`` over the texts of ``prompts.py``; the v2 formats (U-PI,
U-PLI, UA-PIL, U-SPI, UA-SPI) are registered in ``FORMATS`` beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from .actions import Action
from .models.base import Message
from .prompts import PromptSet, inference_messages, output_messages


@dataclass(frozen=True)
class MemoryItem:
    """One kept action and how many segments were visible when it was taken."""

    segments: int
    action: Action


class PromptFormat(Protocol):
    """Builds the chats of both stages from the controller's memory."""

    name: str

    def inference(self, segments: Sequence[str], memory: Sequence[MemoryItem], allowed: Sequence[str]) -> list[Message]:
        ...

    def output(self, segments: Sequence[str], options: str, memory: Sequence[MemoryItem]) -> list[Message]:
        ...


@dataclass(frozen=True)
class V1Format:
    """The v1 layout: one system and one user message per call (see ``prompts.py``)."""

    prompts: PromptSet = PromptSet()
    name: str = "v1"

    def inference(self, segments: Sequence[str], memory: Sequence[MemoryItem], allowed: Sequence[str]) -> list[Message]:
        return inference_messages("".join(segments), [m.action for m in memory], allowed, self.prompts)

    def output(self, segments: Sequence[str], options: str, memory: Sequence[MemoryItem]) -> list[Message]:
        return output_messages("".join(segments), options, [m.action for m in memory], self.prompts)


FORMATS: dict[str, type] = {"v1": V1Format}


def make_format(name: str, prompts: PromptSet | None = None) -> PromptFormat:
    """The format called ``name`` with the given prompt texts."""
    try:
        cls = FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown prompt format {name!r}; choose from {', '.join(FORMATS)}") from None
    return cls(prompts or PromptSet())
