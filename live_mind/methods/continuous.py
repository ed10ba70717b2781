"""Continuous thinking: one context that keeps reasoning while the input streams in.

After the think-while-listening line of work (AsyncReasoning, StreamingThinker): instead
of LiveMind's separate calls with a rebuilt prompt, the model holds *one* conversation
for the question, and each new piece of input is appended to it:

* the first segment opens the conversation (``THINK_SYSTEM``, ``FIRST_TURN``); the model
  thinks aloud until the next segment arrives and stops it (``supersede``; on the
  simulated clock its turn is capped at the tokens that fit before that arrival under
  the run's cost profile, at most ``think_tokens``); what it thought stays (``keep_cut``);
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

from dataclasses import dataclass
from typing import ClassVar, Sequence

from ..models.base import ChatRequest, Completion, Message
from ..prompts import cot_messages
from ..steps import StepResult
from ..timeline import QuestionInput
from .base import MethodRun, OneModelMethod, answer_request, answer_step
from .staged import simulate

THINK_SYSTEM = ("A user is typing a question and you see it piece by piece while it is typed. Think about it as it "
                "arrives: work out what you can already, note what is still unknown, and keep your notes short. Do not "
                "answer before the question is complete.")
FIRST_TURN = "The question so far:\n{text}"
NEXT_TURN = "More of the question:\n{text}"
FINAL_NOTE = "\n\nThe question is complete (above). Answer now, using your thinking so far."


@dataclass
class Continuous(OneModelMethod):
    """One conversation per question, extended by each new segment (see the module notes)."""

    name: ClassVar[str] = "continuous"
    mode: ClassVar[str] = "continuous"
    think_tokens: int = 128

    supersede: ClassVar[bool] = True  # a newer segment stops the thinking turn...
    keep_cut: ClassVar[bool] = True  # ...and what it thought so far stays in the conversation

    def _conversation(self) -> list[Message]:
        """The conversation so far: the previous request and the model's reply to it."""
        if not self.steps:
            return [{"role": "system", "content": THINK_SYSTEM}]
        last = self.steps[-1]
        return [*last.messages, {"role": "assistant", "content": last.response}]

    def typing_request(self, segments: Sequence[str]) -> ChatRequest:
        """The conversation, extended by the segments the model has not seen yet."""
        seen = self.steps[-1].segments if self.steps else 0
        text = "".join(segments[seen:]).strip()
        turn = {"role": "user", "content": (NEXT_TURN if seen else FIRST_TURN).format(text=text)}
        return ChatRequest([*self._conversation(), turn], self.think_tokens, "", self.cache_key)

    def typing_result(self, request: ChatRequest, completion: Completion, segments: int, cut: bool) -> StepResult:
        step = StepResult("think", segments, request.messages, completion.text, completion, note="cut" if cut else None)
        self.steps.append(step)
        return step

    def final_request(self, segments: Sequence[str], options: str, options_count: int) -> ChatRequest:
        """The conversation plus the complete question, in the task's own chain-of-thought
        wording (with its answer format), and the note to answer now."""
        cot = cot_messages("".join(segments), options, self.prompts)
        turn = {"role": "user", "content": "\n\n".join(m["content"] for m in cot) + FINAL_NOTE}
        return answer_request([*self._conversation(), turn], self.final_answer, self.max_new_tokens, self.cache_key,
                              options_count)

    def final_result(self, request: ChatRequest, completion: Completion, segments: int) -> StepResult:
        step = answer_step(request, completion, segments)
        self.steps.append(step)
        return step

    def run(self, q: QuestionInput) -> MethodRun:
        return (yield from simulate(self, q))
