"""One user's question on the shared models, fed by the client's messages.

The session is the live core (``live.py``: ``LiveSession``, its ``SegmentTracker`` and
``run_baseline``) -- the same code as the terminal session -- with three things around it:

* **Shared models.**  ``Engine`` holds the models loaded once at start and the
  controllers built from them; every session gets copies of those controllers whose
  models are ``SharedModel`` wrappers.  A wrapper sends each request through the shared
  asynchronous path (``models/aio.py``): engines with a native ``acomplete`` (vLLM's
  ``AsyncLLM``, OpenAI-compatible servers) serve all sessions at once, any other model
  takes one request at a time from a fair first-come-first-served queue.  The wrapper
  also gives every request the session's stop signal (besides its own), set when the
  user disconnects: the running calls stop, and no new call reaches the model.
* **Edits.**  The client may send the whole text so far or chunks.  Text the tracker has
  not completed yet (the unfinished sentence) may change freely.  An edit that changes a
  *completed* segment invalidates what the model inferred from it: the session restarts
  (the running call is stopped, the memory is dropped, a ``restart`` event is sent) and
  the new text is segmented from scratch.
* **Events.**  Every core event goes to ``emit`` as a wire event (``protocol.py``), from
  whatever thread produced it; ``emit`` must be thread-safe.

``submit`` blocks (it waits for the answer, and the baseline when asked): run it on a
worker thread.  ``close`` may be called from any thread at any time.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from ..clock import RealTimeTypist
from ..data import format_options
from ..live import LiveEvent, LiveResult, LiveSession, run_baseline
from ..methods import registry as methods
from ..methods.base import MethodContext, StagedMethod
from ..methods.cot import CoTController
from ..models import aio
from ..models.base import ChatRequest, Completion, ModelWrapper
from ..models.capabilities import capabilities
from ..models.outage import OutageGuard
from ..records import build_record
from ..runconfig import RunConfig
from ..tasks.scoring import predict
from . import protocol
from .limits import Limits

Emit = Callable[[dict[str, Any]], None]
_ids = itertools.count(1)


class _EitherStop:
    """A request's own stop signal or the session's: set when either is."""

    def __init__(self, own: Any, gone: threading.Event) -> None:
        self.own, self.gone = own, gone

    def is_set(self) -> bool:
        return self.gone.is_set() or self.own.is_set()


class SharedModel(ModelWrapper):
    """A session's handle on a shared model (see the module docstring): the contract is
    the shared model's (``base.ModelWrapper``), but calls go through ``complete`` only,
    on the shared path of ``models/aio.py``, each stopped when the session ends."""

    native_async = False  # type: ignore[assignment]  # the session's worker thread calls complete

    def __init__(self, model: Any, gone: threading.Event) -> None:
        super().__init__(model)
        self.model, self.gone = model, gone

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        out = []
        for request in requests:
            if self.gone.is_set():  # the user left: no new call reaches the model
                out.append(Completion("", 0, 0, 0.0, finish_reason="cancelled"))
                continue
            request = dataclasses.replace(request, stop=self.gone if request.stop is None else _EitherStop(request.stop, self.gone))
            out.append(aio.complete_blocking(self.model, request))
        return out


@dataclasses.dataclass
class Engine:
    """The loaded models, the method and baseline built on them, and the run's settings.
    With ``context`` (the models by role, ``loading.method_context``) a session may ask for
    another live method than the run's (the ``start`` message's ``method``)."""

    controller: StagedMethod
    baseline: CoTController | None
    run: RunConfig
    limits: Limits = dataclasses.field(default_factory=Limits)
    log_dir: Path | None = None
    context: MethodContext | None = None

    def methods(self) -> list[str]:
        """The methods a session may ask for: the run's, and with a context every live method
        the loaded models can run."""
        if self.context is None:
            return [self.controller.name]
        models = self.context.models.values()
        return [name for name, info in methods.REGISTRY.items()
                if info.live and all(methods.missing_capability(name, capabilities(m)) is None for m in models)]

    def controllers(self, gone: threading.Event, method: str | None = None) -> tuple[StagedMethod, CoTController | None]:
        """Fresh per-session method (``method``, default the run's) and baseline over
        ``SharedModel`` handles."""
        if method is None or method == self.controller.name:
            live = _shared_copy(self.controller, gone)
        elif self.context is not None and method in self.methods():
            shared = {role: SharedModel(model, gone) for role, model in self.context.models.items()}
            live = methods.build(method, dataclasses.replace(self.context, models=shared))
        else:
            raise protocol.ProtocolError(protocol.BAD_MESSAGE, f"method {method!r} is not served here; "
                                                               f"choose from {', '.join(self.methods())}")
        base = _shared_copy(self.baseline, gone) if self.baseline is not None else None
        return live, base

    def info(self) -> dict[str, Any]:
        run = self.run
        return {"model": run.model, "assist_model": run.assist_model, "action_set": run.action_set,
                "prompt_format": run.prompt_format, "schedule": run.schedule,
                "typing_speed": run.typing_speed, "baseline": self.baseline is not None,
                "config_id": run.config_id, "limits": self.limits.as_dict(),
                "method": self.controller.name, "methods": self.methods()}

    def health(self) -> str | None:
        """``None`` while every model's backend serves, else why not (one line); a backend
        that is away is probed when its next probe is due (``OutageGuard.probe``)."""
        models = [getattr(self.controller, name, None) for name in MODEL_FIELDS]
        models.append(self.baseline.model if self.baseline is not None else None)
        seen: set[int] = set()
        for model in models:
            if model is None or id(model) in seen or not isinstance(model, OutageGuard):
                continue
            seen.add(id(model))
            reason = model.probe()
            if reason is not None:
                return reason
        return None


MODEL_FIELDS = ("model", "inference_model", "output_model")
"""The fields of the toolkit's methods that hold a model (a session gets shared handles)."""


def _shared_copy(method: Any, gone: threading.Event) -> Any:
    """A fresh copy of a method (no steps, no memory) whose models are session handles."""
    names = {f.name for f in dataclasses.fields(method)}
    models = {name: SharedModel(getattr(method, name), gone) for name in MODEL_FIELDS
              if name in names and getattr(method, name) is not None}
    state = {name: [] for name in ("steps", "memory") if name in names}
    return dataclasses.replace(method, **models, **state)


class ServeSession:
    """One connection's question(s): typing, submit, answer, optional baseline, reset."""

    def __init__(self, engine: Engine, emit: Emit, gone: threading.Event | None = None) -> None:
        self.engine, self.emit = engine, emit
        self.id = f"s{next(_ids)}-{int(time.time())}"
        self.gone = gone or threading.Event()
        self.lock = threading.Lock()
        self.state = "typing"  # typing -> answering -> done (-> typing after reset)
        self.text = ""
        self.options: list[str] = []
        self.reference: str | None = None
        self.baseline = False
        self.method: str | None = None  # the start message's method; None: the run's
        self.questions = 0
        self.live: LiveSession | None = None
        self.told_unavailable = False  # the typing stage's backend_unavailable was sent
        self._final_text = ""

    # ------------------------------------------------------------------ messages
    def handle(self, msg: protocol.Message) -> bool:
        """Apply one message (not ``submit``); returns True when it was a ``submit``
        the caller must now run with ``submit()`` on a worker thread."""
        with self.lock:
            if msg.type == "reset":
                if self.state == "answering":
                    raise protocol.ProtocolError(protocol.BAD_STATE, "cannot reset while the answer is running")
                self._drop_live()
                self.state, self.text, self.reference = "typing", "", None
                self.emit(protocol.event("reset"))
                return False
            if self.state != "typing":
                raise protocol.ProtocolError(protocol.BAD_STATE, f"the question was submitted; send 'reset' for a new one (got {msg.type!r})")
            if msg.options is not None:
                self._set_options(msg.options)
            if msg.baseline is not None:
                self.baseline = msg.baseline and self.engine.baseline is not None
            if msg.method is not None:
                self._set_method(msg.method)
            if msg.reference is not None:
                self.reference = msg.reference
            if msg.type == "start":
                return False
            text = self.text + msg.text if msg.type == "append" else msg.text if msg.text is not None else self.text
            self._set_text(text)
            if msg.type == "submit":
                if not self.text.strip():
                    raise protocol.ProtocolError(protocol.BAD_STATE, "nothing to submit: the question is empty")
                if self.engine.controller.final_answer == "letter" and not self.options:
                    raise protocol.ProtocolError(protocol.BAD_STATE, "this server answers with an option letter: send options")
                self.state = "answering"
                return True
            return False

    def _set_method(self, name: str) -> None:
        """Choose this connection's method (before the question's first character)."""
        if self.live is not None or self.text:
            raise protocol.ProtocolError(protocol.BAD_STATE, "choose the method before typing (or after 'reset')")
        if name not in self.engine.methods():
            raise protocol.ProtocolError(protocol.BAD_MESSAGE, f"method {name!r} is not served here; "
                                                               f"choose from {', '.join(self.engine.methods())}")
        self.method = name

    def _set_options(self, options: list[str]) -> None:
        if sum(len(o) for o in options) > self.engine.limits.max_options_text:
            raise protocol.ProtocolError(protocol.TEXT_TOO_LONG, f"options over {self.engine.limits.max_options_text} characters")
        self.options = list(options)

    def _set_text(self, text: str) -> None:
        limit = self.engine.limits.max_text
        if len(text) > limit:
            raise protocol.ProtocolError(protocol.TEXT_TOO_LONG, f"the question is over {limit} characters; message dropped")
        live = self._ensure_live()
        if not text.startswith("".join(live.tracker.segments)):
            self._drop_live()
            self.emit(protocol.event("restart", reason="an edit changed a completed segment; the model starts over"))
            live = self._ensure_live()
        self.text = text
        live.type(text)

    def _ensure_live(self) -> LiveSession:
        if self.live is None:
            controller, _ = self.engine.controllers(self.gone, self.method)
            run = self.engine.run
            count = len(self.options) or (1 if controller.final_answer == "letter" else 0)
            live = LiveSession(controller, "", count, schedule=run.schedule,
                               cancel_on_complete=run.cancel_on_complete, on_event=None,
                               stream=True, cache_key=f"serve-{self.id}-{self.questions}")
            live.on_event = lambda ev, live=live: self._core_event(live, ev)
            self.live = live
        return self.live

    def _drop_live(self) -> None:
        if self.live is not None:
            self.live.close()
            self.live = None
            self.questions += 1
        self.told_unavailable = False

    def _core_event(self, live: LiveSession, ev: LiveEvent) -> None:
        if live is not self.live or self.gone.is_set():
            return  # a restarted or abandoned question: its late events are dropped
        if ev.kind == "final":
            self._final_text = ev.text
        if ev.kind == "unavailable":
            self.told_unavailable = True
        wire = protocol.live_event(ev)
        if wire is not None:
            self.emit(wire)

    # ------------------------------------------------------------------ the answer
    def submit(self, received: float | None = None) -> dict[str, Any]:
        """Run the answer (and the baseline); emits ``final``, ``baseline``, ``done``.
        ``received``: ``time.perf_counter()`` when the submit message arrived."""
        received = time.perf_counter() if received is None else received
        live = self._ensure_live()
        live.options = format_options(self.options) if self.options else ""
        live.options_count = len(self.options)
        submitted_at = live.now() - (time.perf_counter() - received)
        self.emit(protocol.event("submitted", time=round(submitted_at, 4)))
        result = live.complete(self.text)
        final = self._final_event(result, submitted_at)
        if self.reference is not None:  # scored as a task with (letter) or without (free-form) options
            final["pred"], final["correct"] = predict(self._row(), result.response)
        if self.gone.is_set():
            return final
        self.emit(final)
        base = None
        if self.baseline:
            _, base_ctrl = self.engine.controllers(self.gone)
            step, seconds = run_baseline(base_ctrl, self.text, live.options, live.options_count)
            base = {"answer": step.response, "latency": round(seconds, 4),
                    "usage": {"prompt_tokens": step.completion.prompt_tokens, "completion_tokens": step.completion.completion_tokens}}
            if not self.gone.is_set():
                self.emit(protocol.event("baseline", **base))
        self._log(result, base)
        with self.lock:
            self.state = "done"
        if not self.gone.is_set():
            self.emit(protocol.event("done"))
        return {**final, "baseline": base}

    def _final_event(self, result: LiveResult, submitted_at: float) -> dict[str, Any]:
        end = result.calls[-1].end
        inference = [s for s in result.steps if s.kind == "inference"]
        usage = {"prompt_tokens": sum(s.completion.prompt_tokens for s in result.steps),
                 "completion_tokens": sum(s.completion.completion_tokens for s in result.steps),
                 "cached_tokens": sum(s.completion.cached_tokens for s in result.steps),
                 "answer_tokens": result.steps[-1].completion.completion_tokens,
                 "inference_calls": len(inference),
                 "cancelled_calls": sum(1 for s in inference if s.parse_rule == "cancelled"),
                 "typing_calls": len(result.steps) - 1}
        return protocol.event(
            "final", text=self._final_text, answer=result.response, time=round(end, 4),
            latency=round(end - submitted_at, 4), busy_at_submit=round(result.time_info.overhead_time, 4),
            streamed=result.streamed, usage=usage, error=result.error, method=result.method,
            note=result.steps[-1].note,
            actions=[{"name": s.action_name, "content": s.action.content if s.action else "", "segments": s.segments}
                     for s in inference])

    def _log(self, result: LiveResult, base: dict[str, Any] | None) -> None:
        """``--log_sessions DIR``: one record per answered question (nothing otherwise)."""
        folder = self.engine.log_dir
        if folder is None:
            return
        row = self._row()
        extra = {"config_id": self.engine.run.config_id, "live": True, "input_complete": result.input_complete,
                 "baseline": base}
        record = build_record(row, result.steps, result.method, result.calls, result.time_info, extra)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{row['question_id']}.json").write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")

    def _row(self) -> dict[str, Any]:
        """The question as a record row; with a reference answer, its answer kind too."""
        row = {"question_id": f"{self.id}-{self.questions}", "question": self.text, "options": self.options,
               "answer": self.reference, "category": "serve", "src": "serve"}
        if self.reference is not None:
            row["answer_kind"] = "letter" if self.options else "free"
        return row

    # ------------------------------------------------------------------ the end
    def close(self) -> None:
        """The user left: stop every running and future call of this session."""
        self.gone.set()
        with self.lock:
            if self.live is not None:
                self.live.close()


def answer_once(engine: Engine, question: str, options: list[str], typing_speed: float | None = None,
                baseline: bool = False, sleep: Callable[[float], None] = time.sleep,
                gone: threading.Event | None = None) -> dict[str, Any]:
    """The plain HTTP endpoint: type ``question`` at ``typing_speed`` s/char (None: all at
    once), submit, and return the ``final`` event with the actions and the baseline;
    ``gone`` (set when the client leaves) stops the typing and the session's calls."""
    events: list[dict[str, Any]] = []
    session = ServeSession(engine, events.append, gone)
    session.handle(protocol.Message("start", options=options, baseline=baseline))
    if typing_speed is not None:
        RealTimeTypist(typing_speed, sleep).type(
            question, lambda i, ch: session.handle(protocol.Message("text", text=question[: i + 1])),
            stop=session.gone.is_set)
    session.handle(protocol.Message("submit", text=question))
    try:
        result = session.submit()
    finally:
        session.close()
    errors = [e for e in events if e["type"] == "error"]
    return {**{k: v for k, v in result.items() if k != "type"}, "errors": errors}
