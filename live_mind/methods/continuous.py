"""Continuous thinking: one context that keeps reasoning while the input streams in.

After the think-while-listening line of work (AsyncReasoning, StreamingThinker): instead
of LiveMind's separate calls with a rebuilt prompt, the model holds *one* conversation
for the question, and each new piece of input is appended to it:

* the first segment opens the conversation (``THINK_SYSTEM``, ``FIRST_TURN``); the model
  thinks aloud until the next segment arrives -- its turn is capped at the tokens that
  fit before that arrival under the run's cost profile (``think_tokens`` without one);
* each later segment (all those arrived by the time the model is free) is appended as a
  user turn (``NEXT_TURN``) after the model's own words, and the model thinks on;
* once the input is complete, the complete question with its options is appended in the
  toolkit's chain-of-thought wording (so the task's answer format holds) and the model
  answers from everything it has thought (``FINAL_NOTE``).

Every request is the previous one plus the model's reply plus a new turn, so a backend
that keeps a question's KV cache and extends it in place (``Capabilities.extends_context``:
llama.cpp's one sequence, the scripted test model) never recomputes the conversation;
a backend that cannot is refused when the run is checked.  Under a cost profile the
modelled cache counts the earlier *prompts* only (``cachemodel.py``), so the model's own
thinking tokens are charged again as prompt tokens in the next turn: a small overcharge
(prompt tokens cost a fraction of generated ones), never an undercharge.

Differences from the papers: no training and no special interleaving format (a plain
chat, any instruction model); thinking is cut at segment arrivals on the simulated clock
rather than by a token stream; vLLM's streaming-input sessions are not wired here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from ..clock import CallTime, TimeInfo
from ..models.base import ChatModel, ChatRequest, Message
from ..prompts import PromptSet, cot_messages
from ..segment import split
from ..steps import StepResult
from ..timeline import QuestionInput, tokens_before
from .base import MethodRun, answer_request, answer_step, check_final_answer, visible

THINK_SYSTEM = ("A user is typing a question and you see it piece by piece while it is typed. Think about it as it "
                "arrives: work out what you can already, note what is still unknown, and keep your notes short. Do not "
                "answer before the question is complete.")
FIRST_TURN = "The question so far:\n{text}"
NEXT_TURN = "More of the question:\n{text}"
FINAL_NOTE = "\n\nThe question is complete (above). Answer now, using your thinking so far."


@dataclass
class Continuous:
    """One conversation per question, extended by each new segment (see the module notes)."""

    name: ClassVar[str] = "continuous"
    mode: ClassVar[str] = "continuous"
    model: ChatModel
    prompts: PromptSet = field(default_factory=PromptSet)
    segmenter: Callable[[str], list[str]] = split
    max_new_tokens: int = 512
    think_tokens: int = 128
    final_answer: str = "free"
    cache_key: str | None = None
    steps: list[StepResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_final_answer(self.final_answer)

    def reset(self, cache_key: str | None = None) -> None:
        self.steps, self.cache_key = [], cache_key

    def record_fields(self) -> dict[str, Any]:
        return {}

    def _budget(self, q: QuestionInput, start: float, until: float) -> int:
        """Tokens of thinking that fit before ``until`` (the next arrival), at most ``think_tokens``."""
        fits = tokens_before(q.timing, start, until)
        return self.think_tokens if fits is None else min(self.think_tokens, fits)

    def run(self, q: QuestionInput) -> MethodRun:
        timing, free, calls, seen = q.timing, 0.0, [], 0
        conversation: list[Message] = [{"role": "system", "content": THINK_SYSTEM}]
        while seen < len(q.arrivals) and (start := max(free, q.arrivals[seen])) < q.complete_at:
            arrived = sum(1 for a in q.arrivals if a <= start)
            text = "".join(q.segments[seen:arrived]).strip()
            conversation.append({"role": "user", "content": (NEXT_TURN if seen else FIRST_TURN).format(text=text)})
            until = q.arrivals[arrived] if arrived < len(q.arrivals) else q.complete_at
            request = ChatRequest(list(conversation), self._budget(q, start, until), "", self.cache_key)
            completion = yield self.model, request
            seen = arrived
            conversation.append({"role": "assistant", "content": completion.text})
            self.steps.append(StepResult("think", seen, request.messages, completion.text, completion))
            free = start + timing.charge(completion, answering=True)
            calls.append(CallTime(seen, q.arrivals[seen - 1], start, free))
        # the complete question in the task's own chain-of-thought wording (with its answer format)
        cot = cot_messages(visible(q.segments, len(q.segments)), q.options_text, self.prompts)
        conversation.append({"role": "user", "content": "\n\n".join(m["content"] for m in cot) + FINAL_NOTE})
        request = answer_request(list(conversation), self.final_answer, self.max_new_tokens, self.cache_key, q.options_count)
        step = answer_step(request, (yield self.model, request), len(q.segments))
        self.steps.append(step)
        start = max(free, q.complete_at)
        end = start + timing.charge(step.completion, answering=True)
        calls.append(CallTime(len(q.segments), q.complete_at, start, end))
        return calls, TimeInfo(end, end - q.complete_at, sum(c.seconds for c in calls), max(0.0, free - q.complete_at))
