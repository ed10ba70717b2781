"""vLLM's asynchronous engine (``AsyncLLM``) on a private event-loop thread.

``AsyncLLM`` batches every request in flight continuously -- a request joins the running
batch the moment it arrives and leaves it the moment it ends -- which is what several
questions in flight need (``concurrency.py``).  The engine is bound to the event loop it
was started on, so it gets a loop of its own on a daemon thread; callers on any thread
or loop hand it coroutines (``submit``, ``run``).  Two users share this:

* ``VLLMChatModel(async_engine=True)`` (``model.py``): one engine request per chat
  request, awaited natively by ``models.aio.acomplete`` (``generate_one``);
* ``SessionEngine`` (``sessions.py``): streaming-input sessions.

The stop token ids are computed here once per engine (``mapping.end_of_turn_ids``).
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import itertools
import threading
import time
from concurrent.futures import Future
from typing import Any, Awaitable, Callable, Coroutine, Sequence

from ..base import BackendUnavailable, ChatRequest, Completion, ContextLengthExceeded, ModelError, error_line, stop_requested
from ..mapping import end_of_turn_ids, strip_held
from ..streaming import TextStream
from .mapping import completion_from_request_output

_ids = itertools.count()

ENGINE_DEAD_ERRORS = frozenset({"EngineDeadError", "AsyncEngineDeadError", "MQEngineDeadError"})
"""vLLM's exception classes for an engine that died (V1 ``vllm.v1.engine.exceptions``, and
the older V0 names), matched by name so that classifying needs no vLLM import."""


def engine_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the engine is gone rather than that a request failed: vLLM's
    dead-engine errors and out-of-memory errors (``torch.OutOfMemoryError``, or a message
    saying so)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & ENGINE_DEAD_ERRORS or "OutOfMemoryError" in names or isinstance(exc, MemoryError):
        return True
    return "out of memory" in str(exc).lower()


def engine_died(exc: BaseException | None) -> bool:
    """The one rule for all three engine paths (offline ``LLM``, ``AsyncLLM``, streaming
    sessions): the engine is gone when ``exc`` or any error it was raised from (its
    ``__cause__``/``__context__`` chain) is an engine failure -- so an error already
    wrapped as ``BackendUnavailable`` or ``ModelError`` on the way up still counts."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if engine_failure(exc):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def engine_error(exc: BaseException) -> BaseException:
    """The error to raise for an exception from a vLLM generate call: an engine failure
    becomes ``BackendUnavailable`` (the run waits for the engine), an over-long prompt
    ``ContextLengthExceeded`` and any other ``ValueError`` (vLLM's way of rejecting a
    request) ``ModelError`` -- both recorded against the question; anything else is
    returned as it is."""
    if engine_failure(exc):
        return BackendUnavailable(f"vLLM engine failed ({type(exc).__name__}: {error_line(exc)})")
    if isinstance(exc, ValueError):
        message = error_line(exc)
        if "longer than" in message or "context" in message or "max_model_len" in message:
            return ContextLengthExceeded(message)
        return ModelError(f"vLLM generate failed: {message}")
    return exc


class EngineThread:
    """An ``AsyncLLM`` started on, and driven from, its own event-loop thread."""

    def __init__(self, engine_args: dict[str, Any], stop_tokens: Sequence[str] = (), name: str = "vllm-engine") -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

        async def start() -> Any:
            return AsyncLLM.from_engine_args(AsyncEngineArgs(**engine_args))

        self.engine = self.run(start())
        self.tokenizer = self.engine.get_tokenizer()
        self.stop_ids = end_of_turn_ids(self.tokenizer, stop_tokens)
        self._cleanups: list[Callable[[], Awaitable[None]]] = []
        atexit.register(self.shutdown)  # scripts exit without closing their models

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> Future:
        """Run ``coroutine`` on the engine's loop; a ``concurrent.futures.Future``."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coroutine`` on the engine's loop and wait for its result."""
        return self.submit(coroutine).result()

    def on_shutdown(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Await ``cleanup`` on the engine's loop before the engine stops."""
        self._cleanups.append(cleanup)

    def reset_prefix_cache(self) -> None:
        self.run(self.engine.reset_prefix_cache())

    def shutdown(self) -> None:
        """Stop the engine and the loop thread (quietly: no task is left pending)."""
        if not self._thread.is_alive():
            return
        atexit.unregister(self.shutdown)

        async def stop() -> None:
            for cleanup in self._cleanups:
                await cleanup()
            self.engine.shutdown()
            current = asyncio.current_task()
            pending = [task for task in asyncio.all_tasks() if task is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        try:
            self.run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)
            self.engine = None  # its finalizer runs now, while the interpreter is whole
            gc.collect()


async def generate_one(engine: Any, prompt_ids: list[int], params: Any, request: ChatRequest, held: str = "") -> Completion:
    """One request through ``AsyncLLM.generate`` (on the engine's loop): streamed to
    ``request.on_token``, aborted when ``request.stop`` is set (``finish_reason``
    ``"cancelled"``); ``seconds`` is this request's own wall time."""
    request_id = f"livemind-{next(_ids)}"
    stream = TextStream(request.on_token, held)
    start, final, cancelled = time.perf_counter(), None, False
    try:
        async for output in engine.generate({"prompt_token_ids": prompt_ids}, params, request_id):
            final = output
            stream.update(output.outputs[0].text)
            if not output.finished and stop_requested(request):
                await engine.abort(request_id)
                cancelled = True
                break
    except Exception as exc:
        error = engine_error(exc)
        if error is exc:
            raise
        raise error from exc
    if final is None:
        raise ModelError("vLLM returned no output")
    completion = completion_from_request_output(final, time.perf_counter() - start)
    completion.text = strip_held(completion.text, held)
    stream.finish(completion.text)
    if cancelled:
        completion.finish_reason = "cancelled"
    return completion
