"""vLLM backend: the paper's engine for Llama-3-70B/8B (paper §4).

One ``vllm.LLM`` per model, with tensor / pipeline parallelism, a GPU memory fraction,
quantization (the paper ran AWQ 4-bit checkpoints), ``max_model_len`` and automatic
prefix caching -- the KV cache of a question's earlier prompt is reused when the next
sentence arrives, which is what keeps LiveMind's repeated inference calls cheap.

Each ``complete`` call is **one** ``generate`` call for the whole batch: prompts are
rendered with the tokenizer's chat template and passed as token ids (so the template's
BOS is not doubled), decoding is greedy with the model's end-of-turn stop ids, and
usage plus cached prompt tokens come from the request outputs.  The mapping code lives
in ``mapping.py`` and is tested without vLLM; ``scripts/check_vllm.py`` checks this class
end to end on a GPU.

Two models (inference + assist) can live in one process on one GPU: each ``LLM`` takes
the fraction of GPU memory given by its ``gpu_memory_utilization``, so the fractions of
the two entries must add up to less than one.

Response priming sends ``assistant_prefix`` as is (no prefix healing as in ``hf.py``:
vLLM's V1 engine has no per-request logits processors to constrain just the first
token); the Llama-3 entries default to ``prime_actions = false`` as in the paper.

``choices`` uses vLLM's structured outputs (``StructuredOutputsParams(choice=...)`` on
recent versions, ``GuidedDecodingParams`` on older ones).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from .base import ChatRequest, Completion, ContextLengthExceeded, ModelError, UnsupportedFeature, reject_lead_choices
from .mapping import chat_prompt_ids, completions_from_request_outputs, end_of_turn_ids, sampling_kwargs


def _choice_params(choices: list[str]) -> dict[str, Any]:
    """The SamplingParams keyword that constrains output to ``choices``, by vLLM version."""
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(choice=list(choices))}
    except ImportError:
        pass
    try:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(choice=list(choices))}
    except ImportError:
        raise UnsupportedFeature("this vLLM version has no structured outputs for 'choices'") from None


class VLLMChatModel:
    """A ``ChatModel`` over one in-process ``vllm.LLM``."""

    def __init__(
        self,
        model: str,
        *,
        tokenizer: str | None = None,
        tensor_parallel_size: int = 1,
        pipeline_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        quantization: str | None = None,
        max_model_len: int | None = None,
        dtype: str = "auto",
        enable_prefix_caching: bool = True,
        seed: int = 0,
        trust_remote_code: bool = False,
        enforce_eager: bool = False,
        distributed_executor_backend: str | None = None,
        stop_tokens: Sequence[str] = (),
        engine_args: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        from vllm import LLM

        args: dict[str, Any] = dict(
            model=model,
            tokenizer=tokenizer or model,
            tensor_parallel_size=tensor_parallel_size,
            pipeline_parallel_size=pipeline_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
            enable_prefix_caching=enable_prefix_caching,
            seed=seed,
            trust_remote_code=trust_remote_code,
            enforce_eager=enforce_eager,
        )
        if quantization:
            args["quantization"] = quantization
        if max_model_len:
            args["max_model_len"] = max_model_len
        if distributed_executor_backend:
            args["distributed_executor_backend"] = distributed_executor_backend
        args.update(engine_args or {})
        self.name = name or model
        self.engine_args = args
        self.llm = LLM(**args)
        self.tokenizer = self.llm.get_tokenizer()
        self.stop_token_ids = end_of_turn_ids(self.tokenizer, stop_tokens)
        self.max_model_len = max_model_len

    def _sampling_params(self, request: ChatRequest) -> Any:
        from vllm import SamplingParams

        kwargs = sampling_kwargs(request, self.stop_token_ids)
        if request.choices:
            kwargs.update(_choice_params(request.choices))
        return SamplingParams(**kwargs)

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        reject_lead_choices(requests, "vLLM")
        if not requests:
            return []
        prompts = [{"prompt_token_ids": chat_prompt_ids(self.tokenizer, r.messages, r.assistant_prefix)}
                   for r in requests]
        if self.max_model_len:
            for prompt, request in zip(prompts, requests):
                if len(prompt["prompt_token_ids"]) >= self.max_model_len:
                    raise ContextLengthExceeded(
                        f"prompt of {len(prompt['prompt_token_ids'])} tokens does not fit max_model_len "
                        f"{self.max_model_len}"
                    )
        params = [self._sampling_params(r) for r in requests]
        start = time.perf_counter()
        try:
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
        except ValueError as exc:  # vLLM reports over-long prompts as ValueError
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "longer than" in message or "context" in message or "max_model_len" in message:
                raise ContextLengthExceeded(message) from exc
            raise ModelError(f"vLLM generate failed: {message}") from exc
        seconds = time.perf_counter() - start
        return completions_from_request_outputs(outputs, seconds)
