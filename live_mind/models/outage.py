"""Riding out a backend outage: the one place infrastructure failures are retried.

A backend raises ``BackendUnavailable`` when its server or engine is away (connection
refused or reset, timeouts, HTTP 5xx/429, a dead vLLM engine, an out-of-memory) after its
own short retries.  Such a failure says nothing about the question, so it must never
become an ``error`` record.  ``OutageGuard`` wraps a loaded ``ChatModel`` and retries the
call with exponential backoff and jitter until the backend answers again, for at most
``max_outage`` seconds counted from the first failure; then every call raises
``OutageExceeded`` and the script stops resumably (exit code 75).

The outage state is shared by every call through one guard: when one call finds the
backend away, the calls in flight with it and every new call wait for the same next
probe instead of failing one by one, and the first call that gets through ends the
outage for all.  This holds on the synchronous path (``complete``, also what the
per-model ``Serializer`` thread of ``aio.py`` calls) and on a backend's native
``acomplete`` (the guard then has an ``acomplete`` too, waiting with ``asyncio.sleep``).

While waiting, the guard logs a warning and calls ``on_status`` with a short text (the
scripts put it on the progress bar), and with ``None`` once the backend is back.
Every other member of the contract is the wrapped model's (``base.ModelWrapper``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from typing import Any, Callable, Sequence

from .base import BackendUnavailable, ChatModel, ChatRequest, Completion, ModelWrapper, OutageExceeded, error_line, native_async

log = logging.getLogger(__name__)

DEFAULT_MAX_OUTAGE = 600.0
"""Seconds a backend may stay away before the run stops (``--max_outage``)."""
FIRST_DELAY = 0.5
MAX_DELAY = 30.0
JITTER = 0.25
"""Each wait is the backoff delay times a uniform factor in [1 - JITTER, 1 + JITTER]."""


def outage_delay(attempt: int, first: float = FIRST_DELAY, cap: float = MAX_DELAY, jitter: float = JITTER,
                 rng: random.Random | None = None) -> float:
    """Seconds before probe ``attempt + 1`` of an outage: exponential, capped, jittered."""
    base = min(cap, first * (2 ** attempt))
    factor = 1.0 + jitter * (2.0 * (rng or random).random() - 1.0) if jitter > 0 else 1.0
    return base * factor


class OutageGuard(ModelWrapper):
    """A ``ChatModel`` that waits out its backend's outages (see the module notes)."""

    def __init__(self, inner: ChatModel, max_outage: float = DEFAULT_MAX_OUTAGE,
                 on_status: Callable[[str | None], None] | None = None, *,
                 first_delay: float = FIRST_DELAY, max_delay: float = MAX_DELAY,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        if max_outage < 0:
            raise ValueError("max_outage must be >= 0")
        super().__init__(inner)
        self.max_outage = float(max_outage)
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.on_status = on_status
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._attempt = 0
        self._last_error: BaseException | None = None
        self._exceeded: OutageExceeded | None = None
        self.outages = 0  # outages seen (ridden out or not)
        self.waited = 0.0  # seconds the outages lasted, summed

    # ------------------------------------------------------------------ the contract (base.ModelWrapper)

    def report_status(self, callback: Callable[[str | None], None] | None) -> None:
        self.on_status = callback

    @property
    def down(self) -> bool:
        return self._down_since is not None

    # ------------------------------------------------------------------ shared outage state

    def _wait_time(self) -> float:
        """Seconds to wait before the next call may go out (0 while the backend is up);
        raises ``OutageExceeded`` once the budget is spent."""
        with self._lock:
            if self._exceeded is not None:
                raise OutageExceeded(str(self._exceeded))
            if self._down_since is None:
                return 0.0
            return max(0.0, self._next_probe - self._clock())

    def _failed(self, exc: BackendUnavailable, started: float) -> None:
        """Record a failed call; raises ``OutageExceeded`` when the budget is spent."""
        now = self._clock()
        with self._lock:
            if self._exceeded is not None:
                raise OutageExceeded(str(self._exceeded)) from exc
            self._last_error = exc
            new = self._down_since is None
            if new:
                self._down_since, self._attempt, self.outages = now, 0, self.outages + 1
                log.warning("backend %s unavailable (%s); waiting up to %g s for it to come back",
                            self.name, error_line(exc, 300), self.max_outage)
            deadline = self._down_since + self.max_outage
            if now >= deadline:
                self._exceeded = OutageExceeded(
                    f"backend {self.name} unavailable for {now - self._down_since:.0f} s, longer than "
                    f"--max_outage {self.max_outage:g}: {error_line(exc, 300)}")
                self.waited += now - self._down_since
                raise self._exceeded from exc
            if new or started >= self._next_probe:  # a new outage, or this call was its next probe: back off
                self._next_probe = min(deadline, now + outage_delay(self._attempt, self.first_delay, self.max_delay, rng=self._rng))
                self._attempt += 1
            remaining = self._next_probe - now
            status = f"waiting for backend {self.name} ({error_line(exc, 300)[:60]}); next try in {remaining:.1f} s"
        self._status(status)

    def _succeeded(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            lasted = self._clock() - self._down_since
            self._down_since, self._attempt = None, 0
            self.waited += lasted
        log.warning("backend %s is back after %.1f s", self.name, lasted)
        self._status(None)

    def _status(self, text: str | None) -> None:
        if self.on_status is not None:
            try:
                self.on_status(text)
            except Exception:  # noqa: BLE001 - a display problem must not break the run
                log.debug("status callback failed", exc_info=True)

    # ------------------------------------------------------------------ the protocol

    def _settle(self, exc: Exception, started: float) -> None:
        """After a failed call: return to retry it (the backend is away, the budget not
        spent), else raise -- ``OutageExceeded`` once the budget is spent, or the call's own
        error, which is the question's: the backend answered, so an outage is over."""
        if isinstance(exc, BackendUnavailable) and not isinstance(exc, OutageExceeded):
            self._failed(exc, started)
            return
        self._succeeded()
        raise exc

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        while True:
            time.sleep(self._wait_time())
            started = self._clock()
            try:
                completions = self.inner.complete(requests)
            except Exception as exc:  # noqa: BLE001 - sorted by _settle
                self._settle(exc, started)
                continue
            self._succeeded()
            return completions


class AsyncOutageGuard(OutageGuard):
    """``OutageGuard`` over a model with a native ``acomplete`` (same shared state)."""

    async def acomplete(self, request: ChatRequest) -> Completion:
        completion = None
        while completion is None:
            await asyncio.sleep(self._wait_time())
            started = self._clock()
            try:
                completion = await self.inner.acomplete(request)
            except Exception as exc:  # noqa: BLE001 - sorted by _settle
                self._settle(exc, started)
        self._succeeded()
        return completion


def guard(model: ChatModel, max_outage: float = DEFAULT_MAX_OUTAGE,
          on_status: Callable[[str | None], None] | None = None, **kwargs: Any) -> OutageGuard:
    """Wrap ``model`` (with ``acomplete`` when the model has a native one); a guard is
    returned as it is."""
    if isinstance(model, OutageGuard):
        return model
    cls = AsyncOutageGuard if native_async(model) else OutageGuard
    return cls(model, max_outage, on_status, **kwargs)
