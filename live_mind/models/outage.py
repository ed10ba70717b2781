"""Riding out a backend outage: the one place infrastructure failures are retried.

A backend raises ``BackendUnavailable`` when its server or engine is away (connection
refused or reset, timeouts, HTTP 5xx/429, a dead vLLM engine, an out-of-memory) after its
own short retries.  Such a failure says nothing about the question, so it must never
become an ``error`` record.  ``OutageGuard`` wraps a loaded ``ChatModel`` and retries the
call with exponential backoff and jitter until the backend answers again, for at most
``max_outage`` seconds counted from the first failure; then every call raises
``OutageExceeded`` and the script stops resumably (exit code 75).

The outage state is shared by every call through one guard: when one call finds the
backend away, the calls in flight with it and every new call wait on one schedule
instead of failing one by one.  When the next probe is due, one call goes out as the
probe while the others wait for its answer: a failure backs the schedule off, a
success ends the outage for all.  This holds on the synchronous path (``complete``, also what the
per-model ``Serializer`` thread of ``aio.py`` calls) and on a backend's native
``acomplete`` (the guard then has an ``acomplete`` too, waiting with ``asyncio.sleep``).

While waiting, the guard logs a warning and calls ``on_status`` with a short text (the
scripts put it on the progress bar), and with ``None`` once the backend is back.
Every other member of the contract is the wrapped model's (``base.ModelWrapper``).

Two policies once the budget is spent.  A solver's guard *latches* (``latch=True``, the
default): every later call raises ``OutageExceeded`` and the run stops resumably.  A
server's guard does not (``latch=False``): the calls of that outage raise
``OutageExceeded`` (the server reports them and goes on), and the next call probes the
backend again at once -- it fails at once while the backend is still away, and ends
the outage when it answers -- so a server never stays broken once its backend is back.
``health()`` says whether the backend is serving, for ``/healthz``; ``probe()`` also
asks a backend that has had no call for ``idle_probe`` seconds (one short call, at most
one per ``idle_probe``), so an idle server notices a backend that died between calls.
Only backends with a native ``acomplete`` are asked so (servers, vLLM's engine: another
process, which takes calls from any thread); an in-process model dies with the server.

Stopping: a request whose ``stop`` is set leaves the retry loop at once (also while it
waits), with a ``"cancelled"`` completion.

Streamed text is never shown twice.  A call that has already streamed text to
``on_token`` and then fails is retried only when the request has an ``on_restart``
callback: the guard calls it first (the caller says the answer restarts and forgets
what it showed), then the retried call streams the answer from its start.  Without
``on_restart`` such a call is not retried: it fails with ``StreamInterrupted``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import threading
import time
from typing import Any, Callable, Sequence

from .base import (
    BackendUnavailable,
    ChatModel,
    ChatRequest,
    Completion,
    ModelWrapper,
    OutageExceeded,
    StreamInterrupted,
    error_line,
    native_async,
    stop_requested,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_OUTAGE = 600.0
"""Seconds a backend may stay away before the run stops (``--max_outage``)."""
FIRST_DELAY = 0.5
MAX_DELAY = 30.0
JITTER = 0.25
"""Each wait is the backoff delay times a uniform factor in [1 - JITTER, 1 + JITTER]."""
STOP_POLL = 0.05
"""Seconds between two looks at the requests' stop signals while waiting."""
IDLE_PROBE = 5.0
"""Seconds without a call after which ``probe()`` asks the backend whether it is there."""


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
                 first_delay: float = FIRST_DELAY, max_delay: float = MAX_DELAY, latch: bool = True,
                 idle_probe: float = IDLE_PROBE, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        if max_outage < 0:
            raise ValueError("max_outage must be >= 0")
        super().__init__(inner)
        self.max_outage = float(max_outage)
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.on_status = on_status
        self.latch = latch
        self.idle_probe = idle_probe
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._attempt = 0
        self._last_error: BaseException | None = None
        self._exceeded: OutageExceeded | None = None
        self._probing = False  # a call is out as the outage's probe
        self._in_flight = 0  # calls sent and not yet answered
        self._last_call = clock()  # when the last call went out or came back
        self.outages = 0  # outages seen (ridden out or not)
        self.waited = 0.0  # seconds the outages lasted, summed
        self.probes = 0  # calls sent to the backend, counted (tests count the probes)

    # ------------------------------------------------------------------ the contract (base.ModelWrapper)

    def report_status(self, callback: Callable[[str | None], None] | None) -> None:
        self.on_status = callback

    @property
    def down(self) -> bool:
        return self._down_since is not None or self._exceeded is not None

    def health(self) -> str | None:
        """``None`` while the backend serves; else one line saying why not (an outage
        being waited out, or the last call's failure after the budget was spent)."""
        with self._lock:
            if self._exceeded is not None:
                return f"backend {self.inner.name} unavailable: {error_line(self._exceeded, 300)}"
            if self._down_since is not None:
                return (f"backend {self.inner.name} unavailable for {self._clock() - self._down_since:.0f} s "
                        f"(waiting up to {self.max_outage:g} s): {error_line(self._last_error, 300)}")
            return None

    # ------------------------------------------------------------------ shared outage state

    def _wait_time(self) -> float:
        """Seconds to wait before the next call may go out (0 while the backend is up);
        raises ``OutageExceeded`` once the budget is spent."""
        with self._lock:
            if self._exceeded is not None:
                if self.latch:
                    raise OutageExceeded(str(self._exceeded))
                return 0.0  # not latched: this call probes the backend again at once
            if self._down_since is None:
                return 0.0
            wait = self._next_probe - self._clock()
            if wait > 0:
                return wait
            if self._probing:  # another call is the probe: wait for its answer
                return STOP_POLL
            self._probing = True  # this call is the probe; the others wait for it
            return 0.0

    def _failed(self, exc: BackendUnavailable, started: float) -> None:
        """Record a failed call; raises ``OutageExceeded`` when the budget is spent."""
        now = self._clock()
        with self._lock:
            self._probing = False
            if self._exceeded is not None:
                if not self.latch:  # the probe of a spent outage failed: the backend is still away
                    self._exceeded = (OutageExceeded(
                        f"backend {self.inner.name} still unavailable after an outage longer than --max_outage "
                        f"{self.max_outage:g} s: {error_line(exc, 300)}"))
                    self._next_probe = now + outage_delay(self._attempt, self.first_delay, self.max_delay, rng=self._rng)
                    self._attempt += 1
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
                self._down_since = None
                raise OutageExceeded(str(self._exceeded)) from exc
            if new or started >= self._next_probe:  # a new outage, or this call was its next probe: back off
                self._next_probe = min(deadline, now + outage_delay(self._attempt, self.first_delay, self.max_delay, rng=self._rng))
                self._attempt += 1
            remaining = self._next_probe - now
            status = f"waiting for backend {self.name} ({error_line(exc, 60)}); next try in {remaining:.1f} s"
        self._status(status)

    def _succeeded(self) -> None:
        with self._lock:
            self._probing = False
            if self._down_since is None and (self._exceeded is None or self.latch):
                return  # up already (a latched guard stays stopped: its run is ending)
            lasted = self._clock() - self._down_since if self._down_since is not None else 0.0
            self._down_since, self._attempt, self._exceeded = None, 0, None
            self.waited += lasted
        log.warning("backend %s is back after %.1f s", self.name, lasted)
        self._status(None)

    def probe(self) -> str | None:
        """``health()`` after one short call to the backend when it is away and its next
        probe is due (``/healthz``: a server with no traffic still sees its backend come
        back).  The call is sent once, never waited on or retried."""
        now = self._clock()
        with self._lock:
            if (self._exceeded is not None and not self.latch) or self._down_since is not None:
                due = now >= self._next_probe
            else:  # up: ask a backend of another process that nobody has called for a while
                due = (self.idle_probe > 0 and native_async(self.inner) and not self._in_flight
                       and now - self._last_call >= self.idle_probe)
        if due:
            started, failure = self._sent(), None
            try:
                self.inner.complete([ChatRequest([{"role": "user", "content": "ping"}], max_new_tokens=1)])
            except Exception as exc:  # noqa: BLE001 - any other error is the backend answering
                failure = exc
            finally:
                self._returned()
            if isinstance(failure, BackendUnavailable):
                try:
                    self._failed(failure, started)
                except OutageExceeded:
                    pass
            else:
                self._succeeded()
        return self.health()

    def _status(self, text: str | None) -> None:
        if self.on_status is not None:
            try:
                self.on_status(text)
            except Exception:  # noqa: BLE001 - a display problem must not break the run
                log.debug("status callback failed", exc_info=True)

    # ------------------------------------------------------------------ the protocol

    def _settle(self, exc: Exception, started: float, calls: Sequence["_Call"]) -> None:
        """After a failed call: return to retry it (the backend is away, the budget not
        spent), else raise -- ``OutageExceeded`` once the budget is spent, the call's own
        error, which is the question's (the backend answered, so an outage is over), or
        ``StreamInterrupted`` when a call that streamed text cannot say it restarts."""
        if isinstance(exc, BackendUnavailable) and not isinstance(exc, OutageExceeded):
            self._failed(exc, started)
            for call in calls:
                call.restart(exc)
            return
        self._succeeded()
        raise exc

    def _pause(self, calls: Sequence["_Call"], retry: bool) -> bool:
        """Wait for the shared next probe; False when a request was stopped before its
        retry or while the backend is away (a call to a backend that is up goes out)."""
        while True:
            if (retry or self.down) and any(call.stopped() for call in calls):
                return False
            wait = self._wait_time()
            if wait <= 0:
                return True
            time.sleep(min(wait, STOP_POLL))

    def _sent(self) -> float:
        with self._lock:
            self.probes += 1
            self._in_flight += 1
            self._last_call = self._clock()
            return self._last_call

    def _returned(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._last_call = self._clock()

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        calls, retry = [_Call(r) for r in requests], False
        while True:
            if not self._pause(calls, retry):
                return [_cancelled() for _ in calls]
            retry = True
            started = self._sent()
            try:
                completions = self.inner.complete([call.request for call in calls])
            except Exception as exc:  # noqa: BLE001 - sorted by _settle
                self._settle(exc, started, calls)
                continue
            finally:
                self._returned()
            self._succeeded()
            return completions


class _Call:
    """One request through the guard: notes whether its text reached ``on_token``, so a
    retry never shows the same text twice (see the module notes)."""

    def __init__(self, request: ChatRequest) -> None:
        self.original, self.shown = request, False
        self.request = request if request.on_token is None else dataclasses.replace(request, on_token=self._token)

    def _token(self, text: str) -> None:
        self.shown = self.shown or bool(text)
        self.original.on_token(text)  # type: ignore[misc]

    def stopped(self) -> bool:
        return stop_requested(self.original)

    def restart(self, exc: BaseException) -> None:
        """Before the retry of a failed call: say the answer restarts, or refuse."""
        if not self.shown:
            return
        if self.original.on_restart is None:
            raise StreamInterrupted(f"the backend failed after streaming part of the reply, which is not sent again: "
                                    f"{error_line(exc, 300)}") from exc
        self.shown = False
        self.original.on_restart(error_line(exc, 300))


def _cancelled() -> Completion:
    return Completion("", 0, 0, 0.0, finish_reason="cancelled")


class AsyncOutageGuard(OutageGuard):
    """``OutageGuard`` over a model with a native ``acomplete`` (same shared state)."""

    async def acomplete(self, request: ChatRequest) -> Completion:
        call, retry = _Call(request), False
        while True:
            if (retry or self.down) and call.stopped():
                return _cancelled()
            wait = self._wait_time()
            if wait > 0:
                await asyncio.sleep(min(wait, STOP_POLL))
                continue
            retry = True
            started = self._sent()
            try:
                completion = await self.inner.acomplete(call.request)
            except Exception as exc:  # noqa: BLE001 - sorted by _settle
                self._settle(exc, started, [call])
                continue
            finally:
                self._returned()
            self._succeeded()
            return completion


def guard(model: ChatModel, max_outage: float = DEFAULT_MAX_OUTAGE,
          on_status: Callable[[str | None], None] | None = None, **kwargs: Any) -> OutageGuard:
    """Wrap ``model`` (with ``acomplete`` when the model has a native one); a guard is
    returned as it is.  ``latch=False``: the server's policy (see the module notes)."""
    if isinstance(model, OutageGuard):
        return model
    cls = AsyncOutageGuard if native_async(model) else OutageGuard
    return cls(model, max_outage, on_status, **kwargs)
