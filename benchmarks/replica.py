"""One llama.cpp replica for the scale-out benchmark, with its own request log.

``python benchmarks/replica.py --port P --log FILE [--threads 1] [--name r0]`` serves the
embedded GGUF with llama-cpp-python's OpenAI-compatible server app (the same server as
``python -m llama_cpp.server``), and appends one JSON line per completion request to FILE:

* ``replica`` -- this replica's name; ``key`` -- the request's affinity key (the
  ``X-Session-ID`` header, else the body's ``user`` field), i.e. the question it belongs to;
* ``engine_cached`` -- the prompt tokens the engine did not recompute: the prefix match
  between the KV state it holds when generation starts (after a RAM-cache restore, when
  one matched better) and the new prompt -- the value llama-cpp-python's verbose log
  prints as ``prefix-match hit``;
* ``path``, ``status`` -- the endpoint and the HTTP status (a router may send other requests,
  e.g. vllm-router's ``cache_aware`` asks each worker to tokenize);
* ``cache_states`` / ``cache_mb`` -- the prompt states the RAM cache holds after the request
  (and their size), when the replica has one;
* ``start`` / ``end`` -- wall-clock seconds (``time.time``) of the request.

The replica keeps several prompt states (llama-cpp-python's RAM cache, ``--cache_mb``,
evicting the least recently used beyond it), so, like vLLM's prefix cache, it can resume
any recent question, not only the last one.  A small ``--cache_states`` (or ``--cache_mb``)
models a replica whose cache holds only a few questions, as on a loaded server;
``--cache_mb 0`` keeps only the KV state of the last request.
"""

from __future__ import annotations

import contextvars
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live_mind import flags  # noqa: E402

_CURRENT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("replica_request", default=None)


def _count_prefix_matches() -> None:
    """Note in each request's log entry how many prompt tokens the engine reuses: the
    common prefix of the KV state it holds when ``Llama.generate`` starts (after a
    RAM-cache restore, when one matched better) and the prompt, less the one token
    ``generate`` evaluates again when the whole prompt matched.  Counted as ``generate``
    is called, because ``generate`` compares the tokens itself (llama-cpp-python 0.3.36);
    the prefix comparisons before it are against the state held *before* any restore."""
    from llama_cpp import Llama

    original = Llama.generate

    def generate(self, tokens, *args, **kwargs):  # noqa: ANN001 - llama-cpp-python's own signature
        entry = _CURRENT.get()
        if entry is not None:
            tokens = list(tokens)
            held = Llama.longest_token_prefix(self._input_ids.tolist(), tokens) if self.n_tokens > 0 else 0
            entry["engine_cached"] = int(min(held, max(len(tokens) - 1, 0)))
        return original(self, tokens, *args, **kwargs)

    Llama.generate = generate


def _count_cache_states(most: int | None) -> None:
    """Note the RAM cache's size after each request's state is stored; keep at most
    ``most`` states (the least recently used go first, as llama-cpp-python evicts by size)."""
    from llama_cpp.llama_cache import LlamaRAMCache

    original = LlamaRAMCache.__setitem__

    def stored(self, key, value):  # noqa: ANN001 - llama-cpp-python's own signature
        original(self, key, value)
        while most is not None and len(self.cache_state) > most:
            self.cache_state.popitem(last=False)
        entry = _CURRENT.get()
        if entry is not None:
            entry["cache_states"] = len(self.cache_state)
            entry["cache_mb"] = round(self.cache_size / 2**20, 2)

    LlamaRAMCache.__setitem__ = stored


class RequestLog:
    """ASGI middleware: one JSON line per POST under /v1/ (see the module docstring), and
    ``GET /health`` (200), which vllm-router polls before it routes to a worker."""

    def __init__(self, app, path: str, name: str) -> None:  # noqa: ANN001
        self.app, self.path, self.name = app, path, name

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] == "http" and scope["path"] == "/health":  # vllm-router polls it; llama_cpp.server has none
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            return await send({"type": "http.response.body", "body": b"ok"})
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        entry = {"replica": self.name, "path": scope["path"], "key": headers.get("x-session-id"), "engine_cached": 0,
                 "start": time.time()}
        body = bytearray()

        async def receive_logged():
            message = await receive()
            body.extend(message.get("body", b""))
            return message

        async def send_logged(message):
            await send(message)
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            if message["type"] == "http.response.body" and not message.get("more_body"):
                if entry["key"] is None:
                    try:
                        entry["key"] = json.loads(body or b"{}").get("user")
                    except ValueError:
                        pass
                entry["end"] = time.time()
                with open(self.path, "a", encoding="utf-8") as log:
                    log.write(json.dumps(entry) + "\n")

        _CURRENT.set(entry)
        await self.app(scope, receive_logged, send_logged)


def main(argv: list[str] | None = None) -> int:
    parser = flags.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True, help="append one JSON line per request here")
    parser.add_argument("--name", default="replica")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache_mb", type=int, default=512, help="RAM cache of prompt states (MiB); 0: none, only the last request's KV state")
    parser.add_argument("--cache_states", type=int, default=None,
                        help="keep at most this many prompt states in the RAM cache (default: as many as --cache_mb holds)")
    args = parser.parse_args(argv)

    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    from live_mind.models.registry import gguf_location

    if args.cache_mb < 0 or (args.cache_states is not None and args.cache_states < 1):
        parser.error("--cache_mb must be >= 0 and --cache_states >= 1")
    _count_prefix_matches()
    _count_cache_states(args.cache_states)
    model = ModelSettings(model=str(gguf_location("embedded")), model_alias="smollm2-135m", n_threads=args.threads,
                          n_threads_batch=args.threads, n_ctx=4096, verbose=False, cache=args.cache_mb > 0,
                          cache_type="ram", cache_size=args.cache_mb << 20)
    server = ServerSettings(host="127.0.0.1", port=args.port, interrupt_requests=False)
    app = RequestLog(create_app(server_settings=server, model_settings=[model]), args.log, args.name)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
