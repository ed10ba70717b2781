"""LiveMind, the paper's method (§3, Algorithm 1), as a plug-in method.

The simultaneous-inference controllers (paper §3, Algorithm 1).

``LiveMindController`` holds one question's memory -- the kept (non-wait) actions and
how much of the input each saw -- and turns "these segments have arrived" (+ the
end-of-input signal) into the next model call:

* input incomplete -> the *inference model* picks an action; ``wait`` and unparseable
  replies are recorded in the step log but not kept in memory;
* input complete -> the *output model* answers from the memory, the complete question
  and the options (plain CoT when the memory is empty).  A different output model is
  the paper's collaborative inference.

Each call is split into ``request`` (build it) and ``accept`` (digest its completion)
so the batched solver can gather many questions' requests into one model call; ``step``
does both for the real-time solver.  The chain-of-thought baseline is
``methods/cot.py``.

Response priming: with ``prime_actions`` the inference-stage assistant turn
starts with ``"action "`` and the model continues it; the stored response is prefix +
continuation, parsed as usual.  With ``constrain_actions`` as well, the turn starts with
``"action"`` and the backend must continue with one of `` NAME.`` for the allowed
names (``ChatRequest.lead_choices``), then freely: the reply is always in the format.
``final_answer="letter"`` primes the output stage with
``"The answer is ("`` and constrains the next token to the option letters.

``run`` is LiveMind's procedure on one question's simulated timeline (paper §4.1): an
inference call for the segments the schedule gives it (``schedule.py``: ``every`` or
``latest``, cancellation at the complete input), optional prefill calls while the options
are typed (``prefill.py``), then the final call once the options have arrived.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

from ..actions import DEFAULT_PARSE, PARSE_RULES, UNPARSED, action_set, parse_reply
from ..formats import MemoryItem, PromptFormat, V1Format
from ..models.base import ChatModel, ChatRequest, Completion
from ..prefill import next_prefill, options_prefixes
from ..segment import split
from ..steps import StepResult
from ..timeline import QuestionInput
from .base import MethodRun, answer_request, check_final_answer

log = logging.getLogger(__name__)

ACTION_PRIME = "action "


@dataclass
class LiveMindController:
    """One question's LiveMind state machine over pluggable models and formats."""

    name: ClassVar[str] = "livemind"
    """The registry name and the record's ``mode``."""
    mode: ClassVar[str] = "livemind"
    inference_model: ChatModel
    output_model: ChatModel | None = None
    action_set_name: str = "CAS"
    prompt_format: PromptFormat = field(default_factory=V1Format)
    segmenter: Callable[[str], list[str]] = split
    prime_actions: bool = False
    constrain_actions: bool = False
    max_new_tokens: int = 512
    final_max_new_tokens: int | None = None
    final_answer: str = "free"
    cache_key: str | None = None
    parse: str = DEFAULT_PARSE  # which replies are kept: "v1" (the paper's, default) or "lenient" (actions.parse_reply)
    batched: bool = False  # under "v1": the batched solver's variant of the rule
    memory: list[MemoryItem] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.allowed = action_set(self.action_set_name)
        check_final_answer(self.final_answer)
        if self.parse not in PARSE_RULES:
            raise ValueError(f"parse must be one of {PARSE_RULES}")

    @property
    def answer_model(self) -> ChatModel:
        return self.output_model or self.inference_model

    def reset(self, cache_key: str | None = None) -> None:
        """Forget the previous question."""
        self.memory, self.steps, self.cache_key = [], [], cache_key

    def model_for(self, complete: bool) -> ChatModel:
        return self.answer_model if complete else self.inference_model

    def request(self, segments: Sequence[str], complete: bool, options: str = "", options_count: int = 10) -> ChatRequest:
        """The next call's request for the segments seen so far."""
        if not complete:
            constrain = self.prime_actions and self.constrain_actions
            return ChatRequest(
                messages=self.prompt_format.inference(segments, self.memory, self.allowed, steps=self.steps),
                max_new_tokens=self.max_new_tokens,
                assistant_prefix=ACTION_PRIME.rstrip() if constrain else ACTION_PRIME if self.prime_actions else "",
                cache_key=self.cache_key,
                lead_choices=[f" {name}." for name in self.allowed] if constrain else None,
            )
        messages = self.prompt_format.output(segments, options, self.memory, allowed=self.allowed, steps=self.steps)
        return answer_request(messages, self.final_answer, self.final_max_new_tokens or self.max_new_tokens, self.cache_key,
                              options_count)

    def prefill_request(self, segments: Sequence[str], options_so_far: str, options_count: int = 10) -> ChatRequest:
        """A call that only reads the output-stage prompt built from the text typed so far
        into the output model's prefix cache (prefill while typing, ``prefill.py``)."""
        request = self.request(segments, True, options_so_far, options_count)
        return ChatRequest(request.messages, 1, "", self.cache_key, prefill_only=True)

    def accept_prefill(self, request: ChatRequest, completion: Completion, segments: int) -> StepResult:
        """Log a prefill call as a step of kind ``prefill`` (no response, no memory)."""
        step = StepResult("prefill", segments, request.messages, "", completion)
        self.steps.append(step)
        return step

    def accept(self, request: ChatRequest, completion: Completion, segments: int, complete: bool) -> StepResult:
        """Digest a completion: parse and remember an action, or take the final answer."""
        response = request.assistant_prefix + completion.text
        if complete:
            if request.choices:
                response += ")"
            step = StepResult("final", segments, request.messages, response, completion)
        else:
            action = parse_reply(response, self.allowed, self.parse, self.batched)
            step = StepResult("inference", segments, request.messages, response, completion, action,
                              action.rule if action else UNPARSED)
            if action is None:
                log.info("unparsed inference response: %r", response[:200])
            elif not action.is_wait:
                if action.name not in self.allowed:
                    log.info("kept an action outside the action set (v1 rule): %r", response[:200])
                self.memory.append(MemoryItem(segments, action))
        self.steps.append(step)
        return step

    def discard(self, request: ChatRequest, completion: Completion, segments: int) -> StepResult:
        """Record a cancelled inference call: logged as a step, its output dropped."""
        step = StepResult("inference", segments, request.messages, "", completion, None, "cancelled")
        self.steps.append(step)
        return step

    def step(self, segments: Sequence[str], complete: bool, options: str = "", options_count: int = 10) -> StepResult:
        """Build the request, run the right model on it, and accept the completion."""
        request = self.request(segments, complete, options, options_count)
        completion = self.model_for(complete).complete([request])[0]
        return self.accept(request, completion, len(segments), complete)

    def record_fields(self) -> dict[str, Any]:
        return {}

    # the two-stage form (base.StagedMethod), for the live session and the server
    supersede: ClassVar[bool] = False
    keep_cut: ClassVar[bool] = False

    def typing_request(self, segments: Sequence[str]) -> ChatRequest:
        return self.request(segments, False)

    def typing_result(self, request: ChatRequest, completion: Completion, segments: int, cut: bool) -> StepResult:
        return self.discard(request, completion, segments) if cut else self.accept(request, completion, segments, False)

    def final_request(self, segments: Sequence[str], options: str, options_count: int) -> ChatRequest:
        return self.request(segments, True, options, options_count)

    def final_result(self, request: ChatRequest, completion: Completion, segments: int) -> StepResult:
        return self.accept(request, completion, segments, True)

    def run(self, q: QuestionInput) -> MethodRun:
        """LiveMind on one question's simulated timeline (see the module docstring)."""
        timing, segments = q.timing, q.segments
        clock = q.clock()
        while (plan := clock.next_inference()) is not None:
            seen, start = plan
            request = self.request(segments[:seen], False)
            completion = yield self.model_for(False), request
            call = clock.charge_inference(seen, start, timing.charge(completion))
            if call.cancelled:
                self.discard(request, completion, seen)
            else:
                self.accept(request, completion, seen, False)
        if timing.prefill_while_typing and timing.options_arrival == "typed":
            prefixes = options_prefixes(q.typed, q.arrivals[-1] if q.arrivals else 0.0, q.complete_at)
            done = 0
            while (prefill := next_prefill(prefixes, done, clock.free_at, q.complete_at)) is not None:
                done, start = prefill
                request = self.prefill_request(segments, prefixes[done - 1].text, q.options_count)
                completion = yield self.model_for(True), request
                clock.charge_prefill(prefixes[done - 1].arrival, start, timing.charge(completion, answering=True))
                self.accept_prefill(request, completion, len(segments))
        request = self.request(segments, True, q.options_text, q.options_count)
        step = self.accept(request, (yield self.model_for(True), request), len(segments), True)
        clock.charge_final(timing.charge(step.completion, answering=True))
        return clock.calls, clock.time_info()
