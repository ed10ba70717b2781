"""The chain-of-thought baseline as a method (paper §4.1): one call on the complete question.

The v1 baseline's user types the whole question -- every character, spaces included --
and then the options; the call starts when they have arrived, and its latency is its
own time (``clock.baseline_time_info``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Sequence

from ..clock import CallTime, baseline_time_info
from ..formats import MemoryItem
from ..models.base import ChatRequest, Completion
from ..prompts import cot_messages
from ..steps import StepResult
from ..timeline import QuestionInput
from .base import MethodRun, OneModelMethod, answer_request, answer_step


@dataclass
class CoTController(OneModelMethod):
    """The chain-of-thought baseline: one call on the complete question."""

    name: ClassVar[str] = "cot"
    mode: ClassVar[str] = "cot"
    memory: list[MemoryItem] = field(default_factory=list)  # always empty: the baseline keeps no actions

    def request(self, segments: Sequence[str], complete: bool = True, options: str = "", options_count: int = 10) -> ChatRequest:
        messages = cot_messages("".join(segments), options, self.prompts)
        return answer_request(messages, self.final_answer, self.max_new_tokens, self.cache_key, options_count)

    def accept(self, request: ChatRequest, completion: Completion, segments: int, complete: bool = True) -> StepResult:
        step = answer_step(request, completion, segments)
        self.steps.append(step)
        return step

    def step(self, segments: Sequence[str], complete: bool = True, options: str = "", options_count: int = 10) -> StepResult:
        request = self.request(segments, True, options, options_count)
        completion = self.model.complete([request])[0]
        return self.accept(request, completion, len(segments))

    # the two-stage form (base.StagedMethod), for the live session and the server
    supersede: ClassVar[bool] = False
    keep_cut: ClassVar[bool] = False

    def typing_request(self, segments: Sequence[str]) -> None:
        return None  # nothing while the user types

    def typing_result(self, request: ChatRequest, completion: Completion, segments: int, cut: bool) -> StepResult:
        raise RuntimeError("the CoT baseline makes no call while the user types")

    def final_request(self, segments: Sequence[str], options: str, options_count: int) -> ChatRequest:
        return self.request(segments, True, options, options_count)

    def final_result(self, request: ChatRequest, completion: Completion, segments: int) -> StepResult:
        return self.accept(request, completion, segments)

    def run(self, q: QuestionInput) -> MethodRun:
        """One call once the v1 baseline's input is complete; latency = its time."""
        request = self.request(q.segments, True, q.options_text, q.options_count)
        step = self.accept(request, (yield self.model, request), len(q.segments), True)
        complete_at = q.baseline_complete_at
        info = baseline_time_info(complete_at, q.timing.charge(step.completion, answering=True))
        return [CallTime(len(q.segments), complete_at, complete_at, info.current_time)], info
