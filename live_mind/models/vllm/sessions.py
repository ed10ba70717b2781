"""vLLM streaming-input sessions: one engine request per question (simultaneous inference
done the engine's way; paper §3 with the append-only prompt layout of §5).

vLLM's ``AsyncLLM.generate`` accepts, instead of a prompt, an async generator of
``StreamingInput`` chunks.  The engine keeps such a request alive between chunks: each
chunk's tokens are *appended* to the request, after the tokens the previous chunk
generated, and the KV cache of everything before is kept -- nothing is prefilled twice
and no block-granular prefix matching is involved.  (The engine keeps every generated
token except the last one sampled, which was never fed back: the end-of-turn token, or
the last token of a reply cut by ``max_tokens``.)

``SessionEngine`` maps the chat-model protocol onto that.  Requests with the same
``cache_key`` belong to one question.  For each request the full prompt is rendered as
text (chat template + priming prefix, as the other backends do); when the session's text
so far -- every chunk sent plus the kept replies -- is a prefix of it, only the rest is
tokenized and sent as the next chunk.  That holds for the append-only layout (UA-SPI),
where each call adds the model's reply, the newly typed segments and finally the options
and the answer cue.  When it does not hold (another layout, or the first call), the
session is closed and a new one starts with the whole prompt; ``extra["session"]`` says
which happened (``"new"``, ``"continued"``).

Streaming and stopping: a request's ``on_token`` gets the reply as it is generated, and
its ``stop`` signal aborts the session's engine request (the reply so far is returned,
``finish_reason = "cancelled"``; the question's next call opens a new session).

Usage: ``prompt_tokens`` is the whole prompt the reply was conditioned on (session so
far + chunk), ``cached_tokens`` the part the session already held (not prefilled
again; for a session's first chunk, what vLLM's prefix cache served), ``completion_tokens`` the tokens generated.  A batch is sent at once and every
completion carries the batch's wall time, as the plain vLLM backend does.

At most ``max_sessions`` sessions stay open (least recently used closed first), because
an open session holds its KV blocks while it waits for the next chunk.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Sequence

from ..base import ChatRequest, Completion, ModelError, error_line, stop_requested
from ..decoding import ChoiceTrie
from ..mapping import strip_held
from ..streaming import TextStream


@dataclass
class _Chunk:
    """One chunk's reply."""

    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None


@dataclass
class _Session:
    """One open streaming request: its input queue, its output stream, what it holds."""

    request_id: str
    inputs: asyncio.Queue
    outputs: Any  # the async generator returned by AsyncLLM.generate
    text: str = ""  # everything the engine holds for this request, as text
    tokens: int = 0  # how many tokens that is
    chunks: int = 0
    closed: bool = False
    history: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    """One request of a batch: its session and the chunk that carries its new text."""

    session: _Session
    state: str  # "new" or "continued"
    cached: int  # tokens the session already held
    ids: list[int]  # the chunk's prompt tokens
    request: ChatRequest
    held: str  # prefix-healing whitespace held back from the prompt
    text: str  # the whole prompt as text
    engine_cached: int | None = None  # what the engine's prefix cache served of the first chunk


class SessionEngine:
    """An ``AsyncLLM`` on a private event-loop thread, serving streaming-input sessions."""

    def __init__(self, engine_args: dict[str, Any], max_sessions: int = 32, stop_tokens: Sequence[str] = ()) -> None:
        from .async_engine import EngineThread

        self.max_sessions = max_sessions
        self.sessions: OrderedDict[str, _Session] = OrderedDict()
        self._ids = itertools.count()
        self.thread = EngineThread(engine_args, stop_tokens, name="vllm-sessions")
        self.thread.on_shutdown(self._close_streams)
        self._loop, self.engine, self.tokenizer = self.thread.loop, self.thread.engine, self.thread.tokenizer
        self._healing: dict[str, list[int]] = {}

    def _run(self, coroutine: Any) -> Any:
        return self.thread.run(coroutine)

    # ------------------------------------------------------------------ sessions

    def _open(self, key: str) -> _Session:
        from vllm.engine.protocol import StreamingInput  # noqa: F401  (fails early on old vLLM)

        inputs: asyncio.Queue = asyncio.Queue()

        async def stream():
            while True:
                chunk = await inputs.get()
                if chunk is None:
                    return
                yield chunk

        request_id = f"livemind-{key}-{next(self._ids)}"
        session = _Session(request_id, inputs, None)
        session.outputs = (stream, request_id)  # the generator is created with the first chunk's params
        self.sessions[key] = session
        self.sessions.move_to_end(key)
        while len(self.sessions) > self.max_sessions:
            _, oldest = self.sessions.popitem(last=False)
            self._close(oldest)
        return session

    def _close(self, session: _Session) -> None:
        if not session.closed:
            session.closed = True
            self._loop.call_soon_threadsafe(session.inputs.put_nowait, None)

    def close_all(self) -> None:
        """Close every open session (their KV blocks are freed)."""
        for session in self.sessions.values():
            self._close(session)
        self.sessions.clear()

    # ------------------------------------------------------------------ generation

    def complete(
        self,
        requests: Sequence[ChatRequest],
        render: Callable[[ChatRequest], tuple[str, str]],
        stop_token_ids: Sequence[int],
    ) -> list[Completion]:
        """Serve a batch; ``render`` gives (prompt text, held healing whitespace)."""
        plans = []
        for request in requests:
            text, held = render(request)
            key = request.cache_key or f"one-off-{next(self._ids)}"
            session = self.sessions.get(key)
            if session is not None and not session.closed and text.startswith(session.text) and len(text) > len(session.text):
                state, cached, delta = "continued", session.tokens, text[len(session.text):]
                self.sessions.move_to_end(key)
            else:
                if session is not None:
                    self._close(session)
                session, state, cached, delta = self._open(key), "new", 0, text
            if request.cache_key is None:
                self.sessions.pop(key, None)
            ids = list(self.tokenizer(delta, add_special_tokens=False)["input_ids"])
            plans.append(_Plan(session, state, cached, ids, request, held, text))

        start = time.perf_counter()
        try:
            results = self._run(self._serve(plans, list(stop_token_ids)))
        except Exception as exc:  # the engine reports failures as exceptions of its own types
            raise ModelError(f"vLLM streaming session failed: {error_line(exc)}") from exc
        seconds = time.perf_counter() - start

        completions = []
        for plan, (reply_ids, kept, reply, reason) in zip(plans, results):
            session = plan.session
            if plan.state == "new":  # a new session's prompt may still hit vLLM's prefix cache
                plan.cached = min(plan.engine_cached or 0, len(plan.ids))
            session.text = plan.text + self.tokenizer.decode(kept, skip_special_tokens=False)
            session.tokens = (0 if plan.state == "new" else plan.cached) + len(plan.ids) + len(kept)
            session.chunks += 1
            reply = strip_held(reply, plan.held)
            completions.append(Completion(
                text=reply,
                prompt_tokens=(0 if plan.state == "new" else plan.cached) + len(plan.ids),
                completion_tokens=len(reply_ids),
                seconds=seconds,
                cached_tokens=plan.cached,
                finish_reason=reason if reason in ("length", "cancelled") else "stop",
                extra={"session": plan.state, "session_chunk": session.chunks, "request_id": session.request_id},
            ))
            if plan.request.cache_key is None:
                self._close(session)
        return completions

    async def _serve(self, plans: list["_Plan"], stop_ids: list[int]) -> list:
        return list(await asyncio.gather(*(self._reply(plan, stop_ids) for plan in plans)))

    async def _reply(self, plan: "_Plan", stop_ids: list[int]) -> tuple[list[int], list[int], str, str | None]:
        """Generate one reply in the session: (reply ids, ids the engine kept, text, finish reason).

        Structured outputs apply only to a session's first chunk, so constraints are
        imposed token by token with ``allowed_token_ids``, one chunk per constrained
        token: ``choices`` until one is complete; ``lead_choices`` (or the held
        whitespace of prefix healing) until the opening is decided, then the rest of
        the opening is appended as prompt and decoding goes on freely.
        """
        request, budget, pending = plan.request, int(plan.request.max_new_tokens), list(plan.ids)
        options = request.choices or [plan.held + lead for lead in (request.lead_choices or [])]
        opening: list[int] = []
        if options:
            trie = self._trie(options)
            while True:
                left = [seq for _, seq in trie.items if seq[:len(opening)] == opening]
                allowed, complete = trie.step(opening)
                if complete is not None and not allowed:
                    break
                if request.choices is None and len(left) == 1:
                    forced = left[0][len(opening):]  # one opening left: append its rest as prompt
                    opening, pending = opening + forced, pending + forced
                    break
                token = await self._chunk(plan, pending, 1, sorted(allowed | (set(stop_ids) if complete else set())), stop_ids)
                if token[0] in stop_ids:  # a complete choice that also prefixes a longer one
                    return opening, opening, complete or "", "stop"
                opening, pending = opening + token, token[:]
            if request.choices:
                return opening, opening[:-1], trie.step(opening)[1] or "", "stop"
        elif plan.held:
            opening = await self._chunk(plan, pending, 1, self._starting_with(plan.held, stop_ids), stop_ids)
            if opening[0] in stop_ids:
                return opening, [], "", "stop"
            pending = opening[:]
        head = self.tokenizer.decode(opening, skip_special_tokens=True)
        stream = TextStream(request.on_token, plan.held)
        free = await self._chunk(plan, pending, max(1, budget - len(opening)), None, stop_ids, full=True,
                                 watch=lambda so_far: stream.update(head + so_far))
        text = head + free.text
        stream.finish(strip_held(text, plan.held))
        return opening + free.token_ids, opening + free.token_ids[:-1], text, free.finish_reason

    async def _chunk(self, plan: "_Plan", prompt_ids: list[int], max_tokens: int, allowed: list[int] | None,
                     stop_ids: Sequence[int], full: bool = False, watch: Callable[[str], None] | None = None):
        """Send one chunk and read its reply: the token ids (or, with ``full``, the output).

        ``watch`` sees the reply's text as it grows (streaming).  When the request's stop
        signal is set, the session is aborted (its request ends in the engine) and the
        reply so far comes back with ``finish_reason = "cancelled"``."""
        from vllm import SamplingParams
        from vllm.engine.protocol import StreamingInput
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, stop_token_ids=list(stop_ids),
                                skip_special_tokens=True, allowed_token_ids=allowed or None,
                                output_kind=RequestOutputKind.DELTA)
        session = plan.session
        session.inputs.put_nowait(StreamingInput(prompt=TokensPrompt(prompt_token_ids=prompt_ids), sampling_params=params))
        if not isinstance(session.outputs, AsyncIterator):
            stream, request_id = session.outputs
            session.outputs = self.engine.generate(stream(), params, request_id)
        result = _Chunk()
        while result.finish_reason is None:  # this chunk's reply only; the stream stays open
            try:
                output = await session.outputs.__anext__()
            except StopAsyncIteration:
                result.finish_reason = "stop"
                break
            sample = output.outputs[0]
            if not result.token_ids and plan.engine_cached is None:
                # a library object (tokenizer, config, response): the attribute depends on its version
                plan.engine_cached = int(getattr(output, "num_cached_tokens", 0) or 0)
            result.token_ids.extend(sample.token_ids)
            result.text += sample.text
            result.finish_reason = sample.finish_reason
            if watch is not None:
                watch(result.text)
            if result.finish_reason is None and stop_requested(plan.request):
                session.closed = True
                await self.engine.abort(session.request_id)
                result.finish_reason = "cancelled"
        return result if full else result.token_ids

    def _trie(self, options: list[str]) -> "ChoiceTrie":
        unique = list(dict.fromkeys(options))
        return ChoiceTrie(unique, [list(self.tokenizer(o, add_special_tokens=False)["input_ids"]) for o in unique])

    def _starting_with(self, held: str, stop_ids: Sequence[int]) -> list[int]:
        """Token ids whose text starts with ``held`` (prefix healing's first token)."""
        if held not in self._healing:
            vocab = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
            ok = [i for i, piece in enumerate(vocab) if piece is not None
                  and self.tokenizer.convert_tokens_to_string([piece]).startswith(held)]
            self._healing[held] = ok
        return self._healing[held] + [i for i in stop_ids if i not in self._healing[held]]

    async def _close_streams(self) -> None:
        streams = [s.outputs for s in self.sessions.values() if isinstance(s.outputs, AsyncIterator)]
        self.close_all()
        for stream in streams:
            try:
                await stream.aclose()
            except Exception:  # noqa: BLE001 -- the engine may already have finished it
                pass

    def shutdown(self) -> None:
        """Close the sessions, stop the engine and the loop thread."""
        self.thread.shutdown()
        self.engine = None
