"""The asynchronous path of the chat-model protocol: one request in, one completion out.

Many questions in flight (the real-time solver's ``--concurrency``) and many users of one
service share the loaded models through this one function:

    completion = await acomplete(model, request)

* A backend whose engine batches in-flight requests itself (vLLM's ``AsyncLLM``, an
  OpenAI-compatible server) implements ``async def acomplete(self, request)`` natively;
  it is awaited directly, so every caller's request is in the engine at once.
* Any other backend (transformers, llama.cpp in process, the scripted test model) gets a
  ``Serializer``: one worker thread per model that takes requests in arrival order --
  fair, first come first served -- and runs them with the backend's own synchronous
  ``complete``.  With ``max_batch > 1`` the worker takes every request waiting at that
  moment (up to ``max_batch``) and sends them as one ``complete`` batch, so a backend
  that decodes a batch together (transformers with ``batch_decode``) still gains from
  concurrency.  A failed batch is retried request by request, so an error lands on the
  request that caused it.

``native_async(model)`` tells which of the two a model gets.  ``complete_blocking`` is
the same path for callers on a plain thread (the live session's worker): it waits on the
model's ``Serializer``, or runs a native ``acomplete`` on one shared background event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from .base import ChatModel, ChatRequest, Completion, ModelError, model_name, native_async

__all__ = ["Serializer", "acomplete", "complete_blocking", "native_async", "serializer"]

log = logging.getLogger(__name__)


class Serializer:
    """Runs one model's requests on one worker thread, first come first served.

    ``submit`` may be called from any thread or event loop; it returns a
    ``concurrent.futures.Future``.  The worker thread is a daemon and starts on first use.
    """

    def __init__(self, model: ChatModel, max_batch: int = 1) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.model, self.max_batch = model, max_batch
        self._queue: deque[tuple[ChatRequest, Future]] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, request: ChatRequest) -> Future:
        future: Future = Future()
        with self._ready:
            self._queue.append((request, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=f"serial-{model_name(self.model)}", daemon=True)
                self._thread.start()
            self._ready.notify()
        return future

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            batch = [(r, f) for r, f in batch if f.set_running_or_notify_cancel()]
            if batch:
                self._run(batch)

    def _run(self, batch: list[tuple[ChatRequest, Future]]) -> None:
        try:
            completions = self.model.complete([r for r, _ in batch])
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting callers
            if len(batch) == 1 or not isinstance(exc, ModelError):
                for _, future in batch:
                    future.set_exception(exc)
                return
            log.info("batched call failed (%s); retrying its %d requests one by one", exc, len(batch))
            for request, future in batch:
                try:
                    future.set_result(self.model.complete([request])[0])
                except BaseException as single:  # noqa: BLE001
                    future.set_exception(single)
            return
        for (_, future), completion in zip(batch, completions):
            future.set_result(completion)


_serializers: dict[int, Serializer] = {}
_serializers_lock = threading.Lock()


def serializer(model: ChatModel, max_batch: int | None = None) -> Serializer:
    """The one ``Serializer`` of ``model`` (created on first use; ``max_batch`` updates it).

    Kept by the model's identity (test models may be unhashable dataclasses) and dropped
    when the model is garbage-collected."""
    with _serializers_lock:
        found = _serializers.get(id(model))
        if found is None or found.model is not model:
            found = _serializers[id(model)] = Serializer(model, max_batch or 1)
            try:
                weakref.finalize(model, _serializers.pop, id(model), None)
            except TypeError:  # not weakly referenceable: kept for the process
                pass
        elif max_batch is not None:
            found.max_batch = max_batch
        return found


async def acomplete(model: ChatModel, request: ChatRequest) -> Completion:
    """Complete one request without blocking the event loop (see the module docstring)."""
    if native_async(model):
        return await model.acomplete(request)  # type: ignore[attr-defined]
    return await asyncio.wrap_future(serializer(model).submit(request))


_background: asyncio.AbstractEventLoop | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    """One event loop on a daemon thread, shared by every thread-side caller."""
    global _background
    with _serializers_lock:
        if _background is None:
            _background = asyncio.new_event_loop()
            # Native backends may hand streamed calls to threads (``asyncio.to_thread``):
            # room for many sessions at once, not the default handful of workers.
            _background.set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="aio-background"))
            threading.Thread(target=_background.run_forever, name="aio-background", daemon=True).start()
        return _background


def complete_blocking(model: ChatModel, request: ChatRequest) -> Completion:
    """``acomplete`` for a caller on a thread that is not running an event loop."""
    if native_async(model):
        return asyncio.run_coroutine_threadsafe(model.acomplete(request), _background_loop()).result()  # type: ignore[attr-defined]
    return serializer(model).submit(request).result()
