"""Speculative answering on the partial input (after PredGen's input-time speculation).

PredGen (2025) generates a candidate response while the user is still speaking and, at
the end of input, uses it directly when the final input equals the one it was generated
on, or else as a draft that the model verifies (speculative decoding).  This toolkit's
version, on the typed input of ``timeline.QuestionInput``:

* **speculation** -- once the model is free and a new segment has arrived, the model
  answers the whole question as typed so far, with the chain-of-thought prompt (the
  options not yet typed: ``PENDING_OPTIONS``).  A newer segment supersedes it: a
  speculation still running when the next segment (or the complete input) arrives is
  cut there, charged up to that moment and dropped (``note="cancelled"``).  Under a cost
  profile it is generated only as far as it could get before then (the tokens that fit),
  so no compute is spent on text the clock would drop;
* **at completion** the final call is the chain-of-thought call on the complete input.
  When the backend verifies drafts (``Capabilities.draft_verify``) it carries the newest
  finished speculation as its ``draft``: the model keeps the prefix it would have
  generated itself, read in one pass, and generates only the rest.  The final step's
  ``note`` (and the record's ``predgen`` field, with the token counts) says which
  happened: ``reused`` -- every draft token kept and nothing generated after it, the
  completed input did not change the answer; ``drafted`` -- a prefix kept, the rest
  generated; ``afresh`` -- no finished speculation, or a backend that cannot verify
  drafts (transformers, vLLM and OpenAI-compatible servers here): a plain CoT call.

Differences from PredGen: the input is typed text segmented by sentence, not ASR
partials; on the paper's clock the complete input arrives with its last character, so no
speculation ever sees the complete input and reuse always goes through verification;
and the final prompt is the toolkit's chain-of-thought prompt, so the answer is read and
scored as the baseline's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from ..models.base import DRAFT_ACCEPTED, DRAFT_TOKENS, ChatRequest, Completion
from ..models.capabilities import capabilities
from ..prompts import cot_messages
from ..steps import StepResult
from ..timeline import QuestionInput
from .base import MethodRun, OneModelMethod, answer_request, answer_step
from .staged import simulate

PENDING_OPTIONS = "(any answer options are still being typed: work toward the answer from the question so far)"
"""What a speculation's prompt shows in place of the options it has not seen."""
OUTCOMES = ("reused", "drafted", "afresh")


@dataclass
class PredGen(OneModelMethod):
    """Speculate on each partial input; at completion reuse, verify or answer afresh."""

    name: ClassVar[str] = "predgen"
    mode: ClassVar[str] = "predgen"
    outcome: dict[str, Any] = field(default_factory=dict)

    def reset(self, cache_key: str | None = None) -> None:
        super().reset(cache_key)
        self.outcome = {}

    def record_fields(self) -> dict[str, Any]:
        return {"predgen": dict(self.outcome)}

    supersede: ClassVar[bool] = True  # a newer segment stops the running speculation
    keep_cut: ClassVar[bool] = False  # and its text is dropped

    def typing_request(self, segments: Sequence[str]) -> ChatRequest:
        """The whole answer on the segments typed so far (options not typed yet)."""
        messages = cot_messages("".join(segments), PENDING_OPTIONS, self.prompts)
        return ChatRequest(messages, self.max_new_tokens, "", self.cache_key)

    def typing_result(self, request: ChatRequest, completion: Completion, segments: int, cut: bool) -> StepResult:
        step = StepResult("speculation", segments, request.messages, "" if cut else completion.text, completion,
                          note="cancelled" if cut else "finished")
        self.steps.append(step)
        return step

    def final_request(self, segments: Sequence[str], options: str, options_count: int) -> ChatRequest:
        """The chain-of-thought call on the complete input, carrying the newest finished
        speculation as its draft where the backend verifies drafts."""
        request = answer_request(cot_messages("".join(segments), options, self.prompts), self.final_answer,
                                 self.max_new_tokens, self.cache_key, options_count)
        finished = [s for s in self.steps if s.kind == "speculation" and s.note == "finished"]
        if finished and not request.choices and capabilities(self.model).draft_verify:
            request.draft = finished[-1].response
        return request

    def final_result(self, request: ChatRequest, completion: Completion, segments: int) -> StepResult:
        self.outcome = self._outcome(completion)
        step = answer_step(request, completion, segments, note=self.outcome["outcome"])
        self.steps.append(step)
        return step

    def run(self, q: QuestionInput) -> MethodRun:
        return (yield from simulate(self, q))

    @staticmethod
    def _outcome(completion: Completion) -> dict[str, Any]:
        """How the final call used the draft: all of it, a prefix, or none."""
        if DRAFT_TOKENS not in completion.extra:
            return {"outcome": "afresh"}
        drafted, kept = int(completion.extra[DRAFT_TOKENS]), int(completion.extra[DRAFT_ACCEPTED])
        whole = kept == drafted and completion.completion_tokens == 0
        return {"outcome": "reused" if whole else "drafted", "draft_tokens": drafted, "kept_tokens": kept}
