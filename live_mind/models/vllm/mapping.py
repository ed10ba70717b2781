"""vLLM's side of the mapping, free of any engine so it is testable without vLLM or a GPU.

``sampling_kwargs`` is the greedy ``SamplingParams`` argument set for one request and
``completion_from_request_output`` reads a vLLM ``RequestOutput`` (fields as in
``vllm/outputs.py``: ``prompt_token_ids``, ``outputs[0].text/.token_ids/.finish_reason
/.stop_reason``, ``num_cached_tokens``).  The chat rendering every backend shares is
``models/mapping.py``.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, Sequence

from ..base import ChatRequest, Completion

_CPU_LIST = re.compile(r"^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$")


def cpu_threads_bind(value: str, cores: Iterable[int] | None = None) -> str:
    """``VLLM_CPU_OMP_THREADS_BIND`` for an entry's ``cpu_threads`` (vLLM for CPU).

    By default vLLM for CPU binds the worker's OpenMP threads to all cores but one and keeps
    that one for its scheduler process, which polls the worker between steps: on 2 cores the
    model runs on one.  ``"all"`` binds the threads to every core this process may use
    (``cores``, default its CPU affinity), so the model computes on all of them and the
    scheduler shares; a core list such as ``"0-3"`` or ``"0,2"`` is passed on as written.
    """
    if value == "all":
        ids = sorted(os.sched_getaffinity(0) if cores is None else cores)
        return ",".join(str(i) for i in ids)
    if not _CPU_LIST.match(value):
        raise ValueError(f"cpu_threads must be 'all' or a core list such as '0-3' or '0,2', got {value!r}")
    return value


def sampling_kwargs(request: ChatRequest, stop_token_ids: Sequence[int], seed: int | None = None) -> dict[str, Any]:
    """Greedy decoding arguments for vLLM's ``SamplingParams`` (choices handled separately)."""
    kwargs: dict[str, Any] = {
        "temperature": 0.0,
        "max_tokens": int(request.max_new_tokens),
        "stop_token_ids": list(stop_token_ids),
        "skip_special_tokens": True,
    }
    if seed is not None:
        kwargs["seed"] = seed
    return kwargs


def completion_from_request_output(output: Any, seconds: float) -> Completion:
    """A ``Completion`` from one vLLM ``RequestOutput`` (first sample only; n=1)."""
    sample = output.outputs[0]
    prompt_ids = output.prompt_token_ids or []
    reason = sample.finish_reason or "stop"
    return Completion(
        text=sample.text,
        prompt_tokens=len(prompt_ids),
        completion_tokens=len(sample.token_ids),
        seconds=seconds,
        cached_tokens=int(getattr(output, "num_cached_tokens", 0) or 0),  # absent from older vLLM outputs
        finish_reason="length" if reason == "length" else "stop",
        extra={"stop_reason": sample.stop_reason, "request_id": output.request_id},
    )


def completions_from_request_outputs(outputs: Sequence[Any], seconds: float) -> list[Completion]:
    """All completions of one ``generate`` call, each charged the batch's wall time."""
    return [completion_from_request_output(output, seconds) for output in outputs]
