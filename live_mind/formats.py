"""Prompt formats: how the controller's memory becomes chat messages (paper §3.3).

A *format* turns (segments seen so far, kept actions) into the inference-stage chat and
(segments, options, kept actions) into the output-stage chat.  v1 has one format,
``V1Format``, over the texts of ``prompts.py``.  The v2 formats are named by what the
chat holds and in which order: **U** = everything in one user message, **UA** = user
and assistant turns, **P** = the prompt (question) segments, **I** = the inferences
(kept actions), **L** = the last segments (typed after the latest kept inference),
**S** = sequential: segments and inferences interleaved in the order they happened.

Notation: ``s1..sn`` are the visible segments, ``a1..am`` the kept actions, action
``aj`` taken when ``kj`` segments were visible, ``k = km`` (``n`` when nothing is kept).
``text(i..j)`` is the joined, stripped segment text; every block below is one of the
``v2_*`` texts of ``PromptSet``, and blocks inside one message are joined by a blank
line (empty blocks are left out).  ``S`` is the shared system message ``v2_system``
(action list + response format + how to answer once the problem is complete), the
*same* in both stages, so every call of a question starts with the same tokens.
``OPT`` is the options block and ``FIN`` the ``v2_final`` cue ("the problem is
complete"); ``INF`` the numbered list ``1. NAME: content``.  v2 formats never fall back
to the CoT prompt: ``S`` already says how to solve the complete problem.

=========  ==============================================  ==============================================
format     inference stage                                 output stage
=========  ==============================================  ==============================================
U-PI       S, user[P(1..n) | INF]                          S, user[P(1..n) | OPT | INF | FIN]
U-PLI      S, user[P(1..k) | L(k+1..n) | INF]              S, user[P(1..k) | L(k+1..n) | OPT | INF | FIN]
UA-PIL     S, user[P(1..k)], asst[a1..am], user[L(k+1..n)] S, user[P(1..k)], asst[a1..am], user[L | OPT | FIN]
U-SPI      S, user[P(1..k1) a1 (k1+1..k2) a2 ... (km+1..n)] S, user[P(interleaved 1..n) | OPT | FIN]
UA-SPI     S, user[P(1..v1)], asst[r1], user[v1+1..v2],    the same turns, then user[(vT+1..n) | OPT | FIN]
           asst[r2], ..., user[vT+1..n]
=========  ==============================================  ==============================================

``P(..)`` is ``v2_problem`` ("The problem so far:" + text), ``L(..)`` is ``v2_new``; in UA-PIL the
assistant turn lists the kept actions as the model would have written them
(``action NAME. content``, one per line); in U-SPI each action is inlined as
``v2_note`` right after the segments it was drawn from.  With no kept action, U-PLI and
UA-PIL have ``k = n``: one ``P`` block, no ``L`` and no assistant turn.

**UA-SPI is append-only.**  Its turns are *all completed inference calls* (waits and
unparsed replies included, cancelled calls left out): call ``j`` saw ``vj`` segments
and replied ``rj`` (its full response, priming prefix included).  Call ``j+1``'s chat is
call ``j``'s chat + ``asst[rj]`` + ``user[segments vj+1..]``, and the final chat is the
last completed call's chat + its reply + one user turn with the remaining segments, the
options and the cue -- so a prefix-caching backend re-reads only the newest turn.  This
needs the full step log, which the controller passes as ``steps``; called without it
(``steps=None``), UA-SPI rebuilds the turns from the kept actions alone (exact for
histories without waits/unparsed replies).  The first user turn carries the ``P``
header, later ones the raw segment text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from .actions import ACTION_DESCRIPTIONS, ACTION_SETS, Action
from .models.base import Message
from .prompts import PromptSet, inference_messages, numbered, output_messages


@dataclass(frozen=True)
class MemoryItem:
    """One kept action and how many segments were visible when it was taken."""

    segments: int
    action: Action


class StepLike(Protocol):
    """What a format reads from the controller's step log (``controller.StepResult``)."""

    kind: str
    segments: int
    response: str
    parse_rule: str | None


class PromptFormat(Protocol):
    """Builds the chats of both stages from the controller's memory.

    ``steps`` is the controller's full step log (every call so far, waits and unparsed
    replies included) and ``allowed`` the action set; formats that do not need them
    ignore them.
    """

    name: str

    def inference(self, segments: Sequence[str], memory: Sequence[MemoryItem], allowed: Sequence[str],
                  *, steps: Sequence[StepLike] | None = None) -> list[Message]:
        ...

    def output(self, segments: Sequence[str], options: str, memory: Sequence[MemoryItem],
               *, allowed: Sequence[str] | None = None, steps: Sequence[StepLike] | None = None) -> list[Message]:
        ...


@dataclass(frozen=True)
class V1Format:
    """The v1 layout: one system and one user message per call (see ``prompts.py``)."""

    prompts: PromptSet = PromptSet()
    name: str = "v1"

    def inference(self, segments: Sequence[str], memory: Sequence[MemoryItem], allowed: Sequence[str],
                  *, steps: Sequence[StepLike] | None = None) -> list[Message]:
        return inference_messages("".join(segments), [m.action for m in memory], allowed, self.prompts)

    def output(self, segments: Sequence[str], options: str, memory: Sequence[MemoryItem],
               *, allowed: Sequence[str] | None = None, steps: Sequence[StepLike] | None = None) -> list[Message]:
        return output_messages("".join(segments), options, [m.action for m in memory], self.prompts)


# --------------------------------------------------------------------------- v2 building blocks


@dataclass(frozen=True)
class Turn:
    """One completed inference call as UA-SPI shows it: visible segments and the reply."""

    segments: int
    reply: str


def completed_turns(memory: Sequence[MemoryItem], steps: Sequence[StepLike] | None) -> list[Turn]:
    """The inference calls that count as conversation turns (see the module docstring)."""
    if steps is None:
        return [Turn(m.segments, m.action.render()) for m in memory]
    return [Turn(s.segments, s.response) for s in steps if s.kind == "inference" and s.parse_rule != "cancelled"]


def _user(content: str) -> Message:
    return {"role": "user", "content": content}


def _assistant(content: str) -> Message:
    return {"role": "assistant", "content": content}


def _blocks(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


@dataclass(frozen=True)
class _V2Base:
    """Shared pieces of the v2 formats."""

    prompts: PromptSet = PromptSet()

    def system(self, allowed: Sequence[str] | None) -> Message:
        names = tuple(allowed) if allowed else ACTION_SETS["CAS"]
        action_list = "\n".join(self.prompts.action_line.format(name=n, description=ACTION_DESCRIPTIONS[n]) for n in names)
        example = next((n for n in names if n != "wait"), names[0])
        return {"role": "system", "content": self.prompts.v2_system.format(action_list=action_list, example=example)}

    @staticmethod
    def text(segments: Sequence[str], start: int, end: int | None = None) -> str:
        return "".join(segments[start:end]).strip()

    def problem(self, text: str) -> str:
        return self.prompts.v2_problem.format(problem=text) if text else ""

    def new(self, text: str) -> str:
        return self.prompts.v2_new.format(text=text) if text else ""

    def inferences(self, memory: Sequence[MemoryItem]) -> str:
        items = [f"{m.action.name}: {m.action.content}" for m in memory if not m.action.is_wait]
        return self.prompts.v2_inferences.format(items=numbered(items, self.prompts)) if items else ""

    def split_point(self, segments: Sequence[str], memory: Sequence[MemoryItem]) -> int:
        """``k``: segments visible at the latest kept action (all when none is kept)."""
        return min(memory[-1].segments, len(segments)) if memory else len(segments)


@dataclass(frozen=True)
class UPIFormat(_V2Base):
    """U-PI: one user message, problem then inferences."""

    name: str = "U-PI"

    def inference(self, segments, memory, allowed, *, steps=None) -> list[Message]:
        return [self.system(allowed), _user(_blocks(self.problem(self.text(segments, 0)), self.inferences(memory)))]

    def output(self, segments, options, memory, *, allowed=None, steps=None) -> list[Message]:
        body = _blocks(self.problem(self.text(segments, 0)), options, self.inferences(memory), self.prompts.v2_final)
        return [self.system(allowed), _user(body)]


@dataclass(frozen=True)
class UPLIFormat(_V2Base):
    """U-PLI: one user message, problem up to the latest inference, the newer segments, inferences."""

    name: str = "U-PLI"

    def inference(self, segments, memory, allowed, *, steps=None) -> list[Message]:
        k = self.split_point(segments, memory)
        body = _blocks(self.problem(self.text(segments, 0, k)), self.new(self.text(segments, k)), self.inferences(memory))
        return [self.system(allowed), _user(body)]

    def output(self, segments, options, memory, *, allowed=None, steps=None) -> list[Message]:
        k = self.split_point(segments, memory)
        body = _blocks(self.problem(self.text(segments, 0, k)), self.new(self.text(segments, k)), options,
                       self.inferences(memory), self.prompts.v2_final)
        return [self.system(allowed), _user(body)]


@dataclass(frozen=True)
class UAPILFormat(_V2Base):
    """UA-PIL: user = problem so far, assistant = the kept actions, user = the newer segments."""

    name: str = "UA-PIL"

    def _head(self, segments, memory) -> tuple[list[Message], str]:
        kept = [m for m in memory if not m.action.is_wait]
        if not kept:
            return [], self.text(segments, 0)
        k = self.split_point(segments, kept)
        replies = "\n".join(m.action.render() for m in kept)
        return [_user(self.problem(self.text(segments, 0, k))), _assistant(replies)], self.text(segments, k)

    def inference(self, segments, memory, allowed, *, steps=None) -> list[Message]:
        head, rest = self._head(segments, memory)
        tail = self.new(rest) if head else self.problem(rest)
        return [self.system(allowed), *head, _user(tail)]

    def output(self, segments, options, memory, *, allowed=None, steps=None) -> list[Message]:
        head, rest = self._head(segments, memory)
        tail = _blocks(self.new(rest) if head else self.problem(rest), options, self.prompts.v2_final)
        return [self.system(allowed), *head, _user(tail)]


@dataclass(frozen=True)
class USPIFormat(_V2Base):
    """U-SPI: one user message with segments and inferences interleaved in time order."""

    name: str = "U-SPI"

    def interleaved(self, segments: Sequence[str], memory: Sequence[MemoryItem]) -> str:
        parts, start = [], 0
        for m in memory:
            if m.action.is_wait:
                continue
            end = min(m.segments, len(segments))
            if chunk := self.text(segments, start, end):
                parts.append(chunk)
            parts.append(self.prompts.v2_note.format(name=m.action.name, content=m.action.content))
            start = max(start, end)
        if rest := self.text(segments, start):
            parts.append(rest)
        return "\n".join(parts)

    def inference(self, segments, memory, allowed, *, steps=None) -> list[Message]:
        return [self.system(allowed), _user(self.problem(self.interleaved(segments, memory)))]

    def output(self, segments, options, memory, *, allowed=None, steps=None) -> list[Message]:
        body = _blocks(self.problem(self.interleaved(segments, memory)), options, self.prompts.v2_final)
        return [self.system(allowed), _user(body)]


@dataclass(frozen=True)
class UASPIFormat(_V2Base):
    """UA-SPI: alternating user (new segments) and assistant (the reply) turns; append-only."""

    name: str = "UA-SPI"

    def conversation(self, segments: Sequence[str], memory, steps) -> tuple[list[Message], int]:
        """The completed turns as messages, and how many segments they cover."""
        messages: list[Message] = []
        start = 0
        for turn in completed_turns(memory, steps):
            end = min(turn.segments, len(segments))
            chunk = self.text(segments, start, end)
            messages += [_user(self.problem(chunk) if not messages else chunk), _assistant(turn.reply)]
            start = max(start, end)
        return messages, start

    def inference(self, segments, memory, allowed, *, steps=None) -> list[Message]:
        turns, start = self.conversation(segments, memory, steps)
        rest = self.text(segments, start)
        return [self.system(allowed), *turns, _user(rest if turns else self.problem(rest))]

    def output(self, segments, options, memory, *, allowed=None, steps=None) -> list[Message]:
        turns, start = self.conversation(segments, memory, steps)
        rest = self.text(segments, start)
        tail = _blocks(rest if turns else self.problem(rest), options, self.prompts.v2_final)
        return [self.system(allowed), *turns, _user(tail)]


FORMATS: dict[str, type] = {
    "v1": V1Format,
    "U-PI": UPIFormat,
    "U-PLI": UPLIFormat,
    "UA-PIL": UAPILFormat,
    "U-SPI": USPIFormat,
    "UA-SPI": UASPIFormat,
}


def make_format(name: str, prompts: PromptSet | None = None) -> PromptFormat:
    """The format called ``name`` (case-insensitive) with the given prompt texts."""
    cls = FORMATS.get(name) or next((c for n, c in FORMATS.items() if n.lower() == str(name).lower()), None)
    if cls is None:
        raise ValueError(f"unknown prompt format {name!r}; choose from {', '.join(FORMATS)}")
    return cls(prompts or PromptSet())
