"""The live session core: LiveMind on text that is being typed right now.

``live_cli.py`` (run by ``live_session.py``) is the terminal front end; the session
itself lives here.  The parts:

* ``SegmentTracker`` turns the text typed so far into *completed* segments.  A segment
  is complete once the segmenter has started a later one (for sentences: the first
  character of the next sentence is typed) or when the question is finished.  Completed
  segments never change, so every model call sees a stable prefix of the question.
* ``LiveSession`` runs a background worker thread that calls the inference model on the
  completed segments while typing goes on -- under ``latest`` (default) it takes all
  segments completed since its previous call, under ``every`` one call per segment in
  order (the clock's rules, ``clock.py``, on the wall clock instead of a simulated one).
  When the input is complete the worker stops starting calls (``every`` without
  cancellation still works through the segments it has not seen, as v1 does), the
  running call is stopped with ``cancel_on_complete`` or awaited otherwise, and the
  final call runs in the caller's thread.  Latency = end of the final answer - input
  complete, measured with ``time.perf_counter``.
* Stopping and streaming go through the chat-model protocol (``models/base.py``): every
  inference request carries the session's stop signal (a ``threading.Event``), set when
  the input completes under ``cancel_on_complete``; the final request carries an
  ``on_token`` callback that streams the answer, and an ``on_restart`` one: a call the
  outage guard retries after it streamed text says so (an ``answer_restart`` event) and
  streams again from the start -- no text is shown twice unannounced.  Backends that cannot stop run the
  call to its end and its output is dropped (the latency then includes that wait,
  reported as ``overhead_time``); backends that cannot stream show the answer when done.
* ``close`` abandons a session (the session server: the user left, or edited a completed
  segment): the worker starts no more calls and the running one gets its stop signal.
* ``replay`` types a text at a fixed speed in real time -- for tests and demos.

All times in the results are seconds since the session started.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .clock import OPTIONS_ARRIVALS, PAPER_SECONDS_PER_CHAR, CallTime, RealTimeTypist, TimeInfo
from .methods.base import StagedMethod
from .methods.cot import CoTController
from .models.base import BackendUnavailable, Completion, ModelError, error_line
from .schedule import WAIT, check_schedule, next_visible
from .steps import StepResult

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- segments


@dataclass
class SegmentTracker:
    """Completed segments of a growing text (see the module docstring)."""

    segmenter: Callable[[str], list[str]]
    segments: list[str] = field(default_factory=list)
    consumed: int = 0  # characters covered by ``segments``

    def update(self, text: str) -> list[str]:
        """Feed the whole text typed so far; return the segments completed by it."""
        if not text.startswith("".join(self.segments)):
            raise ValueError("typed text no longer starts with the completed segments")
        rest = text[self.consumed:]
        pieces = self.segmenter(rest) if rest.strip() else []
        return self._commit(pieces[:-1])

    def finish(self, text: str) -> list[str]:
        """The question is complete: every remaining piece becomes a segment."""
        self.update(text)
        rest = text[self.consumed:]
        return self._commit(self.segmenter(rest) if rest.strip() else [])

    def _commit(self, pieces: Sequence[str]) -> list[str]:
        pieces = [p for p in pieces if p]
        self.segments.extend(pieces)
        self.consumed += sum(len(p) for p in pieces)
        return list(pieces)


# --------------------------------------------------------------------------- the session


@dataclass
class LiveEvent:
    """Something the front end may show: a completed segment, an action, a token..."""

    kind: str  # "segment" | "action" | "cancelled" | "error" | "unavailable" | "final_start" | "token" | "answer_restart" | "final"
    # "unavailable": an inference call found the backend away past --max_outage while the
    # user types; told at once, and raised again by ``complete``.
    # For "final_start", "token" and "final" the texts, printed in order, give the final
    # response exactly ("final" carries what the stream has not shown); after an
    # "answer_restart" (the backend failed mid-answer and the call is retried) the answer
    # is streamed again from its start; ``step`` is set for "action", "cancelled" and "final".
    time: float
    text: str = ""
    step: StepResult | None = None


@dataclass
class LiveResult:
    """One live question: steps, wall-clock call times and the v1-style ``time_info``."""

    segments: list[str]
    steps: list[StepResult]
    calls: list[CallTime]
    time_info: TimeInfo
    response: str
    streamed: bool
    input_complete: float
    error: str | None = None
    method: str = "livemind"  # the method's registry name: the record's ``mode``

    @property
    def latency(self) -> float:
        return self.time_info.latency


class LiveSession:
    """Runs a two-stage method on text while it is typed (see the module docstring)."""

    def __init__(
        self,
        controller: StagedMethod,
        options: str = "",
        options_count: int = 0,
        *,
        schedule: str = "latest",
        cancel_on_complete: bool = False,
        on_event: Callable[[LiveEvent], None] | None = None,
        stream: bool = True,
        cache_key: str = "live",
    ) -> None:
        check_schedule(schedule)
        if controller.final_answer == "letter" and options_count < 1:
            raise ValueError("--final_answer letter needs options to choose from")
        self.controller = controller
        self.options, self.options_count = options, options_count
        # a method whose newer segment stops the running call always calls on everything typed
        self.schedule = "latest" if controller.supersede else schedule
        self.cancel_on_complete = cancel_on_complete
        self._superseded = False  # the running call was stopped by a newer segment
        self.on_event = on_event or (lambda event: None)
        self.stream = stream
        self.tracker = SegmentTracker(controller.segmenter)
        self.arrivals: list[float] = []
        self.calls: list[CallTime] = []
        self.stop = threading.Event()
        self._cond = threading.Condition()
        self._complete_at: float | None = None
        self._closed = False
        self._running = False
        self._consumed = 0
        self._error: BaseException | None = None
        self._t0 = time.perf_counter()
        controller.reset(cache_key=cache_key)
        self._worker = threading.Thread(target=self._work, name="livemind-worker", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ input side
    def now(self) -> float:
        return time.perf_counter() - self._t0

    def type(self, text: str) -> None:
        """The whole text of the question typed so far."""
        self._add(self.tracker.update(text))

    def question_done(self, text: str) -> None:
        """The question text is finished (options may still follow)."""
        self._add(self.tracker.finish(text))

    def _add(self, pieces: list[str], complete: bool = False) -> None:
        """Hand completed segments to the worker; with ``complete`` the input ends in the
        same step, so no inference call can start on the segments the Enter completed."""
        if not pieces and not complete:
            return
        at = self.now()
        with self._cond:
            self.arrivals.extend([at] * len(pieces))
            if complete:
                self._complete_at = at
                if self.cancel_on_complete:
                    self.stop.set()
            elif pieces and self.controller.supersede and self._running:
                self._superseded = True
                self.stop.set()
            self._cond.notify_all()
        for piece in pieces:
            self.on_event(LiveEvent("segment", at, piece))

    # ------------------------------------------------------------------ the worker
    def _next_call(self) -> int | None:
        """Visible segments of the next inference call, or ``None`` when the stage is over
        (waits while there is nothing to do).  Called with the lock held."""
        while True:
            if self._error is not None or self._closed:
                return None
            visible = next_visible(self.schedule, self.cancel_on_complete, self._consumed, len(self.tracker.segments),
                                   self._complete_at is not None)
            if visible != WAIT:
                return visible
            self._cond.wait()

    def _work(self) -> None:
        ctrl = self.controller
        try:
            while True:
                with self._cond:
                    visible = self._next_call()
                    if visible is None:
                        return
                    self.stop.clear()
                    self._superseded = False
                    self._running = True  # from here a newer segment stops the call (supersede)
                    segments = list(self.tracker.segments[:visible])
                    arrival = self.arrivals[visible - 1]
                request = ctrl.typing_request(segments)
                if request is None:  # nothing to do on these segments (the CoT baseline)
                    with self._cond:
                        self._consumed, self._running = visible, False
                    continue
                request.stop = self.stop
                start = self.now()
                try:
                    completion = ctrl.model_for(False).complete([request])[0]
                finally:
                    with self._cond:
                        self._running = False
                end = self.now()
                with self._cond:
                    cancelled = ((self.cancel_on_complete and self._complete_at is not None and self._complete_at < end)
                                 or self._superseded)
                    step = ctrl.typing_result(request, completion, visible, cancelled)
                    self.calls.append(CallTime(visible, arrival, start, end, cancelled))
                    self._consumed = visible
                dropped = cancelled and not ctrl.keep_cut
                self.on_event(LiveEvent("cancelled" if dropped else "action", end, step.response, step))
        except ModelError as exc:
            log.warning("inference call failed: %s", exc)
            self.on_event(LiveEvent("error", self.now(), f"{type(exc).__name__}: {exc}"))
        except BaseException as exc:  # re-raised in complete()
            with self._cond:
                self._error = exc
                self._cond.notify_all()
            if isinstance(exc, BackendUnavailable):
                self.on_event(LiveEvent("unavailable", self.now(), error_line(exc)))

    def close(self) -> None:
        """Abandon the session (its user left, or edited a completed segment): the
        worker starts no more calls and the running one gets its stop signal."""
        with self._cond:
            self._closed = True
            self.stop.set()
            self._cond.notify_all()

    # ------------------------------------------------------------------ completion
    def complete(self, text: str | None = None) -> LiveResult:
        """The input is complete: stop or await the inference stage, run the final call."""
        self._add(self.tracker.finish(text) if text is not None else [], complete=True)
        complete_at = self._complete_at
        self._worker.join()
        busy_until = self.calls[-1].end if self.calls else 0.0
        if not self._closed:
            self.stop.clear()
        if self._error is not None:
            raise self._error
        return self._final(complete_at, max(0.0, busy_until - complete_at))

    def _final(self, complete_at: float, overhead: float) -> LiveResult:
        ctrl = self.controller
        segments = list(self.tracker.segments)
        model = ctrl.model_for(True)
        request = ctrl.final_request(segments, self.options, self.options_count)
        streamed: list[str] = []

        def on_token(text: str) -> None:
            streamed.append(text)
            self.on_event(LiveEvent("token", self.now(), text))

        def on_restart(reason: str) -> None:  # the backend failed mid-answer: it restarts, shown as such
            streamed.clear()
            self.on_event(LiveEvent("answer_restart", self.now(), reason))

        if self.stream:
            request.on_token, request.on_restart = on_token, on_restart
        start = self.now()
        self.on_event(LiveEvent("final_start", start, request.assistant_prefix))
        error = None
        try:
            completion = model.complete([request])[0]
        except ModelError as exc:
            error = f"{type(exc).__name__}: {exc}"
            completion = Completion("", 0, 0, self.now() - start, finish_reason="error")
        end = self.now()
        step = ctrl.final_result(request, completion, len(segments))
        shown = request.assistant_prefix + "".join(streamed)
        rest = step.response[len(shown):] if step.response.startswith(shown) else "\n" + step.response
        self.on_event(LiveEvent("final", end, rest, step))
        calls = [*self.calls, CallTime(len(segments), complete_at, start, end)]
        info = TimeInfo(end, end - complete_at, sum(c.seconds for c in calls), overhead)
        return LiveResult(segments, list(ctrl.steps), calls, info, step.response, bool(streamed), complete_at, error,
                          ctrl.name)


def run_baseline(controller: CoTController, question: str, options: str, options_count: int) -> tuple[StepResult, float]:
    """The CoT baseline on the complete input; returns its step and wall-clock latency."""
    controller.reset(cache_key=None)
    segments = controller.segmenter(question)
    start = time.perf_counter()
    step = controller.step(segments, True, options, options_count)
    return step, time.perf_counter() - start


# --------------------------------------------------------------------------- replay


def replay(
    session: LiveSession,
    question: str,
    options: str = "",
    *,
    typing_speed: float = PAPER_SECONDS_PER_CHAR,
    options_arrival: str = "typed",
    echo: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> LiveResult:
    """Type ``question`` (then ``options``) into the session at ``typing_speed`` seconds per
    character of real time, then complete the input and return the result."""
    if options_arrival not in OPTIONS_ARRIVALS:
        raise ValueError(f"options_arrival must be one of {OPTIONS_ARRIVALS}")
    show = echo or (lambda s: None)
    typist = RealTimeTypist(typing_speed, sleep)

    def typed(i: int, ch: str) -> None:
        show(ch)
        session.type(question[: i + 1])

    typist.type(question, typed)
    session.question_done(question)
    if options and options_arrival == "typed":
        typist.type("\n" + options, lambda i, ch: show(ch))
    elif options:
        show("\n" + options)
    return session.complete()
