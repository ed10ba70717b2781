"""What a simultaneous-inference method is (the plug-in interface).

A method is a policy over one question's typed input, driven by the clock as a
SimulEval agent is driven by its evaluator: the driver (``solver.py``; several questions
in flight: ``concurrency.py``) types the question and owns time; the method decides which
model calls to make, on which part of the input, and what the final answer is.

The contract, ``Method``:

* ``name`` -- the registry name, saved as each record's ``mode``;
* ``segmenter`` -- how the question is cut into segments (the run's ``--granularity``);
* ``reset(cache_key)`` -- forget the previous question; ``steps`` -- this question's calls
  (``steps.StepResult``), which become the record's ``steps`` and ``usage``;
* ``run(question)`` -- a generator over the question (``timeline.QuestionInput``): it
  yields ``(model, request)`` for each call it wants, receives the ``Completion`` (a
  ``ModelError`` is thrown into it), charges the call on the clock it took from the
  input (``question.clock()``: the schedule rules) or keeps its own per-model time, and
  returns ``(call times, time_info)``.  The last step is the scored answer
  (``kind="final"``), made by a call or taken from a result the method already has;
* ``record_fields()`` -- anything the method adds to the record (may be empty).

Roles: a method's calls are made by models bound to roles ("think" and "answer"); the
registry (``registry.py``) builds a method from the run's settings and the loaded models
by role (``MethodContext``).  A method from outside the package is named
``module:Factory`` (the module importable), the factory taking a ``MethodContext``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Protocol, Sequence

from ..answer import LETTERS
from ..clock import CallTime, TimeInfo
from ..models.base import ChatModel, ChatRequest, Completion
from ..prompts import PromptSet
from ..segment import split
from ..steps import StepResult
from ..timeline import QuestionInput

LETTER_PRIME = "The answer is ("
"""``--final_answer letter``: the answering turn starts so, and the next token is a letter."""
FINAL_ANSWERS = ("free", "letter")

Call = tuple[ChatModel, ChatRequest]
MethodRun = Generator[Call, Completion, tuple[list[CallTime], TimeInfo]]


class Method(Protocol):
    """A simultaneous-inference method (see the module docstring)."""

    name: str
    segmenter: Callable[[str], list[str]]
    steps: list[StepResult]

    def reset(self, cache_key: str | None = None) -> None: ...

    def run(self, question: QuestionInput) -> MethodRun: ...

    def record_fields(self) -> dict[str, Any]: ...


class StagedMethod(Method, Protocol):
    """A method in two stages -- calls while the user types, one answer once the input is
    complete -- that any clock can drive: the simulated one (``staged.simulate``, its
    ``run``) and the wall clock (the live session and the server, ``live.py``).

    * ``typing_request(segments)`` -- the call to make on the completed segments, or None;
    * ``typing_result(request, completion, segments, cut)`` -- digest it; ``cut``: it was
      stopped (a newer segment under ``supersede``, or the complete input under
      ``--cancel_on_complete``);
    * ``final_request`` / ``final_result`` -- the answering call and its scored step;
    * ``supersede`` -- a newer segment stops the running typing call (its tokens are then
      capped, under a profile, at what fits before that segment arrives);
    * ``keep_cut`` -- a stopped call's text is still used (thinking so far) rather than dropped.
    """

    supersede: bool
    keep_cut: bool
    final_answer: str  # "free", or "letter": one option letter (``FINAL_ANSWERS``)

    def model_for(self, complete: bool) -> ChatModel: ...

    def typing_request(self, segments: Sequence[str]) -> ChatRequest | None: ...

    def typing_result(self, request: ChatRequest, completion: Completion, segments: int, cut: bool) -> StepResult: ...

    def final_request(self, segments: Sequence[str], options: str, options_count: int) -> ChatRequest: ...

    def final_result(self, request: ChatRequest, completion: Completion, segments: int) -> StepResult: ...


@dataclass(frozen=True)
class MethodContext:
    """What a method is built from: the run's settings, prompts, models by role
    (``"model"``: the run's model; ``"assist_model"``: the answering model of a
    collaborative run) and the segmenter."""

    run: Any  # runconfig.RunConfig
    prompts: Any  # prompts.PromptSet
    models: dict[str, ChatModel]
    segmenter: Callable[[str], list[str]]

    @property
    def answer_model(self) -> ChatModel:
        return self.models.get("assist_model") or self.models["model"]


@dataclass
class OneModelMethod:
    """The fields and plumbing every one-model method shares (the CoT baseline, PredGen,
    continuous thinking): its model and prompts, the run's segmenter and token limit, the
    answer form, and this question's steps."""

    model: ChatModel
    prompts: PromptSet = field(default_factory=PromptSet)
    segmenter: Callable[[str], list[str]] = split
    max_new_tokens: int = 512
    final_answer: str = "free"
    cache_key: str | None = None
    steps: list[StepResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_final_answer(self.final_answer)

    def reset(self, cache_key: str | None = None) -> None:
        self.steps, self.cache_key = [], cache_key

    def model_for(self, complete: bool) -> ChatModel:
        return self.model

    def record_fields(self) -> dict[str, Any]:
        return {}


def letter_choices(options_count: int) -> list[str]:
    return list(LETTERS[:options_count])


def answer_request(messages: list[dict[str, str]], final_answer: str, max_new_tokens: int, cache_key: str | None,
                   options_count: int) -> ChatRequest:
    """The answering call's request: free text, or under ``final_answer="letter"`` primed
    with ``LETTER_PRIME`` and constrained to one option letter."""
    if final_answer == "letter":
        return ChatRequest(messages, 1, LETTER_PRIME, cache_key, letter_choices(options_count))
    return ChatRequest(messages, max_new_tokens, "", cache_key)


def answer_step(request: ChatRequest, completion: Completion, segments: int, note: str | None = None) -> StepResult:
    """The scored step of an answering call (the letter prime closed with ``)``)."""
    response = request.assistant_prefix + completion.text + (")" if request.choices else "")
    return StepResult("final", segments, request.messages, response, completion, note=note)


def check_final_answer(final_answer: str) -> None:
    if final_answer not in FINAL_ANSWERS:
        raise ValueError(f"final_answer must be one of {FINAL_ANSWERS}")
