"""A model that replays the inference stage of a finished LiveMind run.

Collaborative inference (paper §4.3) changes only who answers: the inference model's
calls -- their prompts, and under greedy decoding their replies -- do not depend on the
output model.  So the inference stage of a finished run can be replayed instead of
recomputed, and another answering model tried on it at the cost of its final calls alone:

    [models.qwen-1.5b-replayed]
    backend = "live_mind.models.recorded:RecordedInference"
    run = "output/mmlu_pro/time_info/qwen2_5_coder_1_5b_lm/all.json"

    python run_solver.py --method livemind --models my_models.toml --model qwen-1.5b-replayed \\
        --assist_model qwen2.5-coder-0.5b ...same selection, typing and token limits as the run...

Each request carries its question's key (``ChatRequest.cache_key``: the question id), and
the model answers that question's recorded inference calls in order, with their recorded
reply, token counts and seconds -- so on the simulated timeline every inference call
lasts as long as it did (``--timing measured``), or is re-charged from its tokens under a
profile.  The replay is checked, not assumed: a question the run does not hold, a call
past the recorded ones, a recorded call that saw a different number of segments (the
request's problem text is compared with the recorded question), or an output-stage
request (the replayed model never answers) is a ``ModelError`` naming the question.  The
run must have been made with the same selection, typing speed, schedule, action set,
prompt format and inference token limit; the records say so (``config_id`` of the run is
kept in ``extra``).
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from pathlib import Path
from typing import Any, Sequence

from .base import Capabilities, ChatModel, ChatRequest, Completion, ModelError


class RecordedInference(ChatModel):
    """Answers inference-stage requests from a finished run's ``steps`` (see the module notes)."""

    capabilities = Capabilities()

    def __init__(self, run: str, name: str | None = None) -> None:
        path = Path(run).expanduser()
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read the recorded run {path}: {exc}") from None
        self.name = name or f"recorded:{path.parent.name}"
        self.source = str(path)
        try:
            saved = json.loads(path.with_suffix(".config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = {}
        self.granularity = saved.get("granularity") or "sentence"
        self.questions: dict[str, str] = {}
        self.pending: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        for record in records:
            key = str(record.get("question_id"))
            self.questions[key] = record.get("question") or ""
            for step in record.get("steps") or []:
                if step.get("kind") == "inference" and step.get("action") != "cancelled":
                    self.pending[key].append(step)

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return [self._replay(request) for request in requests]

    def _replay(self, request: ChatRequest) -> Completion:
        key = str(request.cache_key)
        if key not in self.questions:
            raise ModelError(f"question {key} is not in the recorded run {self.source}")
        if not self.pending[key]:
            raise ModelError(f"question {key}: more inference calls than the recorded run made "
                             "(another schedule, segmentation or action set?)")
        step = self.pending[key].popleft()
        text = "\n".join(m["content"] for m in request.messages if m["role"] == "user")
        if "complete problem" in text.lower() or not _shows_segments(text, self.questions[key], int(step["segments"]),
                                                                     self.granularity):
            raise ModelError(f"question {key}: the request does not match recorded call with {step['segments']} "
                             "segment(s) (an output-stage request, or other segments)")
        return Completion(text=step["response"], prompt_tokens=int(step["prompt_tokens"]),
                          completion_tokens=int(step["completion_tokens"]), seconds=float(step["seconds"]),
                          cached_tokens=int(step.get("cached_tokens") or 0), finish_reason="stop",
                          extra={"replayed_from": self.source})


def _shows_segments(text: str, question: str, segments: int, granularity: str = "sentence") -> bool:
    """Whether a request's user text holds exactly the first ``segments`` segments of the
    question: the recorded call's visible text is in it, and the next segment is not."""
    from ..segment import split

    parts = split(question, granularity)
    seen = "".join(parts[:segments]).strip()
    if not seen or seen not in text:
        return False
    return segments >= len(parts) or "".join(parts[:segments + 1]).strip() not in text
