"""The FastAPI application: the WebSocket session, the plain HTTP answer, the page.

Routes (docs/serve.md has the message table):

* ``GET /`` -- the page (``static/index.html``, its script and style; no CDN, no build);
* ``WS /v1/session`` -- one live question at a time (``session.ServeSession``);
* ``POST /v1/answer`` -- the whole question in one request, the answer (and the
  baseline) back as JSON; ``typing_speed`` > 0 types it on the server first;
* ``GET /v1/info`` (models, flags, limits), ``GET /v1/samples`` (the bundled sample
  questions), ``GET /v1/stats`` and ``POST /v1/stats/reset`` (sessions, error counts,
  server overhead per event); ``GET /healthz`` (no key needed): 200 while the backend
  serves, 503 with a one-line reason during an outage or after a failed probe.

Every request first passes the Host and Origin checks (``auth.allowed_request``): a
refused one gets 403 and creates no session.  A backend outage longer than
``--max_outage`` ends the calls in flight with a ``backend_unavailable`` error event (503
for ``POST /v1/answer``); the server goes on, and the next call probes the backend again.

Each WebSocket has a receive loop (limits, parsing, auth, the session's input side) and
a send task that drains the session's event queue; events produced on worker threads
reach the queue through ``loop.call_soon_threadsafe``.  ``submit`` runs on a thread pool
sized for ``max_sessions``, so a waiting answer never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field, field_validator

from ..clock import check_typing_speed
from ..data import load_sample_questions
from ..models.base import BackendUnavailable, error_line
from . import protocol
from .auth import allowed_request, bearer, key_matches
from .limits import OverheadStats, RateLimiter
from .session import Engine, ServeSession, answer_once

log = logging.getLogger(__name__)
STATIC = resources.files(__package__) / "static"
STATIC_TYPES = {"app.js": "text/javascript", "style.css": "text/css"}
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
"""The page loads nothing from elsewhere and runs no inline script."""
DISCONNECT_POLL = 0.25
"""Seconds between two looks at whether a ``POST /v1/answer`` client is still there."""


class AnswerRequest(BaseModel):
    question: str = Field(min_length=1)
    options: list[str] = Field(default_factory=list, max_length=protocol.MAX_OPTIONS)
    typing_speed: float | None = Field(default=None, le=5.0, allow_inf_nan=False)  # None: the whole text at once
    baseline: bool = False

    @field_validator("typing_speed")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None:
            check_typing_speed(value)  # the one rule for a typing speed (clock.py)
        return value


def _finite(value: Any) -> Any:
    """``value`` with every NaN and infinity as its text: JSON has no such numbers, so a
    422 that echoes the request's ``NaN`` back could not be written (a 500 instead)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))}, status_code=422)


class Workers:
    """The threads that run the answers: made when first needed, shut down when the app
    stops, and made again if it starts again (a host may run the app's lifespan more than
    once, as in-process test clients do)."""

    def __init__(self, size: int) -> None:
        self.size, self.pool, self.lock = size, None, threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        with self.lock:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="serve-answer")
            return self.pool

    def shutdown(self) -> None:
        with self.lock:
            pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class Slots:
    """Sessions at once (``--max_sessions``), counted across WebSocket and HTTP."""

    def __init__(self, stats: OverheadStats, limit: int) -> None:
        self.stats, self.limit, self.lock = stats, limit, threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.stats.sessions_active >= self.limit:
                return False
            self.stats.sessions_active += 1
            self.stats.sessions_total += 1
            return True

    def give(self) -> None:
        with self.lock:
            self.stats.sessions_active -= 1


class HeaderCheck:
    """ASGI middleware: the Host and Origin checks of every HTTP request and WebSocket
    handshake (``auth.allowed_request``); a refused one is answered 403 and goes no
    further (a refused WebSocket is closed before it is accepted: HTTP 403)."""

    def __init__(self, app: Any, bound: str, hosts: tuple[str, ...], origins: tuple[str, ...], stats: OverheadStats) -> None:
        self.app, self.bound, self.hosts, self.origins, self.stats = app, bound, hosts, origins, stats

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            why = allowed_request(headers, self.bound, self.hosts, self.origins)
            if why is not None:
                self.stats.count_error(protocol.FORBIDDEN)
                log.warning("refused %s %s: %s", scope["type"], scope.get("path"), why)
                if scope["type"] == "websocket":
                    await receive()  # the handshake's connect event
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await JSONResponse({"detail": why}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(engine: Engine, api_key: str | None = None, stats: OverheadStats | None = None, *, bound: str = "127.0.0.1",
               allowed_hosts: tuple[str, ...] = (), allowed_origins: tuple[str, ...] = ()) -> FastAPI:
    limits = engine.limits
    stats = stats or OverheadStats()
    workers = Workers(limits.max_sessions + 2)
    slots = Slots(stats, limits.max_sessions)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        workers.shutdown()

    app = FastAPI(title="LiveMind session server", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.engine, app.state.stats = engine, stats
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_middleware(HeaderCheck, bound=bound, hosts=allowed_hosts, origins=allowed_origins, stats=stats)

    def require_key(request: Request) -> None:
        if not key_matches(api_key, bearer(request.headers.get("authorization"))):
            stats.count_error(protocol.UNAUTHORIZED)
            raise HTTPException(401, "missing or wrong API key (Authorization: Bearer KEY)")

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("{{AUTH}}", "required" if api_key else "none"), headers=PAGE_HEADERS)

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC_TYPES:
            raise HTTPException(404, "not found")
        return Response((STATIC / name).read_text(encoding="utf-8"), media_type=STATIC_TYPES[name],
                        headers={"X-Content-Type-Options": "nosniff"})

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """Runs on a worker thread: it may probe a backend that is away (``OutageGuard.probe``)."""
        reason = engine.health()
        if reason is None:
            return JSONResponse({"ok": True})
        return JSONResponse({"ok": False, "reason": reason}, status_code=503)

    @app.get("/v1/info")
    def info(request: Request) -> dict[str, Any]:
        require_key(request)
        return {**engine.info(), "auth_required": api_key is not None}

    @app.get("/v1/samples")
    def samples(request: Request) -> list[dict[str, Any]]:
        require_key(request)
        return [{k: row[k] for k in ("question", "options", "answer", "category")} for row in load_sample_questions()]

    @app.get("/v1/stats")
    def get_stats(request: Request) -> dict[str, Any]:
        require_key(request)
        return stats.summary()

    @app.post("/v1/stats/reset")
    def reset_stats(request: Request) -> dict[str, Any]:
        require_key(request)
        stats.reset()
        return stats.summary()

    @app.post("/v1/answer")
    async def answer(body: AnswerRequest, request: Request) -> JSONResponse:
        require_key(request)
        if len(body.question) > limits.max_text or sum(map(len, body.options)) > limits.max_options_text:
            stats.count_error(protocol.TEXT_TOO_LONG)
            raise HTTPException(413, f"the question is over {limits.max_text} characters (or the options over {limits.max_options_text})")
        if len(body.question) * (body.typing_speed or 0.0) > limits.idle_timeout:
            raise HTTPException(400, f"typing the question would take over {limits.idle_timeout:g} s (--idle_timeout)")
        if not slots.take():
            stats.count_error(protocol.TOO_MANY_SESSIONS)
            raise HTTPException(503, f"{limits.max_sessions} sessions are running; try again later")
        gone = threading.Event()  # set when the client goes away: the session's calls stop
        try:
            loop = asyncio.get_running_loop()
            running = loop.run_in_executor(workers.get(), lambda: answer_once(
                engine, body.question, body.options, body.typing_speed, body.baseline, gone=gone))
            while not (await asyncio.wait({running}, timeout=DISCONNECT_POLL))[0]:
                if await request.is_disconnected():
                    gone.set()
            result = await running
        except protocol.ProtocolError as exc:
            raise HTTPException(400, str(exc)) from None
        except BackendUnavailable as exc:
            stats.count_error(protocol.BACKEND_UNAVAILABLE)
            return JSONResponse({"detail": error_line(exc), "code": protocol.BACKEND_UNAVAILABLE}, status_code=503)
        finally:
            slots.give()
        return JSONResponse(result)

    @app.websocket("/v1/session")
    async def session_socket(ws: WebSocket) -> None:
        await ws.accept()
        if not slots.take():
            stats.count_error(protocol.TOO_MANY_SESSIONS)
            await ws.send_text(json.dumps(protocol.error(protocol.TOO_MANY_SESSIONS,
                                                         f"{limits.max_sessions} sessions are running; try again later")))
            await ws.close(code=1013)
            return
        try:
            await _run_socket(ws, engine, api_key, stats, workers.get())
        finally:
            slots.give()

    return app


async def _run_socket(ws: WebSocket, engine: Engine, api_key: str | None, stats: OverheadStats, pool: ThreadPoolExecutor) -> None:
    limits = engine.limits
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def emit(ev: dict[str, Any] | None) -> None:
        if ev is not None and ev.get("type") == "error":
            stats.count_error(ev["code"])
        loop.call_soon_threadsafe(queue.put_nowait, (ev, time.perf_counter()))

    session = ServeSession(engine, emit)
    sender = asyncio.create_task(_send_loop(ws, queue, stats))
    authed = key_matches(api_key, bearer(ws.headers.get("authorization")))
    if authed:
        emit(protocol.event("ready", session=session.id, **engine.info()))
    limiter = RateLimiter(limits.max_rate)
    close_code = None
    try:
        while True:
            try:
                frame = await asyncio.wait_for(ws.receive(), limits.idle_timeout)
            except asyncio.TimeoutError:
                if session.state == "answering":
                    continue
                emit(protocol.error(protocol.IDLE_TIMEOUT, f"no message for {limits.idle_timeout:g} s; closing"))
                close_code = 1000
                break
            if frame["type"] == "websocket.disconnect":
                break
            received = time.perf_counter()
            raw = frame.get("text") if frame.get("text") is not None else frame.get("bytes") or b""
            try:
                if len(raw.encode("utf-8") if isinstance(raw, str) else raw) > limits.max_message_bytes:
                    raise protocol.ProtocolError(protocol.MESSAGE_TOO_LARGE, f"message over {limits.max_message_bytes} bytes; dropped")
                if not limiter.allow():
                    raise protocol.ProtocolError(protocol.RATE_LIMITED, f"more than {limits.max_rate:g} messages per second; dropped")
                msg = protocol.parse_message(raw)
                if not authed:
                    if msg.type != "start" or not key_matches(api_key, msg.api_key):
                        emit(protocol.error(protocol.UNAUTHORIZED, "missing or wrong API key: send it first, in a 'start' message or as a bearer token"))
                        close_code = 1008
                        break
                    authed = True
                    emit(protocol.event("ready", session=session.id, **engine.info()))
                if session.handle(msg):
                    loop.run_in_executor(pool, _submit, session, received, emit)
            except protocol.ProtocolError as exc:
                emit(protocol.error(exc.code, str(exc)))
            except Exception as exc:  # noqa: BLE001 - one message's failure must not drop the session
                log.exception("session %s: a message failed", session.id)
                emit(protocol.error(protocol.INTERNAL, f"{type(exc).__name__}: {exc}"[:300]))
            stats.add(time.perf_counter() - received)
    except WebSocketDisconnect:
        pass
    finally:
        session.close()
        if close_code is None:
            sender.cancel()
        else:
            emit(None)
            await sender
            try:
                await ws.close(code=close_code)
            except RuntimeError:
                pass


def _submit(session: ServeSession, received: float, emit: Any) -> None:
    """Run the answer on a worker thread; a failure is an error event, never a crash: a
    backend away longer than ``--max_outage`` is ``backend_unavailable``, anything else
    ``internal``.  The session goes on (``reset`` starts a new question)."""
    try:
        session.submit(received)
        return
    except BackendUnavailable as exc:
        log.warning("session %s: %s", session.id, error_line(exc))
        # an outage met while typing was sent when it happened; the submit ends on it
        failure = None if session.told_unavailable else protocol.error(protocol.BACKEND_UNAVAILABLE, error_line(exc))
    except Exception as exc:  # noqa: BLE001 - reported to the client, the server goes on
        log.exception("session %s failed", session.id)
        failure = protocol.error(protocol.INTERNAL, f"{type(exc).__name__}: {exc}")
    if failure is not None:
        emit(failure)
    with session.lock:
        session.state = "done"
    emit(protocol.event("done"))


async def _send_loop(ws: WebSocket, queue: asyncio.Queue, stats: OverheadStats) -> None:
    while True:
        ev, emitted = await queue.get()
        if ev is None:
            return
        try:
            await ws.send_text(json.dumps(ev))
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        stats.add(time.perf_counter() - emitted)
