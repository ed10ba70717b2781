"""Per-session limits and the server's overhead statistics.

Every limit answers with an ``error`` event and the session (and every other session)
goes on: an over-long text or an over-large or too-frequent message is dropped, an idle
session is closed, a session over ``max_sessions`` is refused.  ``text`` messages carry
the whole question, so a dropped one is repaired by the next.

``OverheadStats`` measures what the server itself adds per event: for a client message,
the time from receiving it to having handled it (parsing, segmenting, handing work to the
model); for a server event, the time from the live core emitting it to the WebSocket
having sent it.  Model time is not in it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Limits:
    """The server's limits (flags of ``serve.py``)."""

    max_sessions: int = 16
    max_text: int = 4000  # characters of question per session
    max_options_text: int = 4000  # characters of all options together
    max_message_bytes: int = 16384
    max_rate: float = 100.0  # messages per second (burst: one second's worth)
    idle_timeout: float = 300.0  # seconds without a message (not counting a running answer)

    def check(self) -> None:
        for name, value in asdict(self).items():
            if value <= 0:
                raise ValueError(f"--{name} must be > 0")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RateLimiter:
    """A token bucket: ``rate`` messages per second, bursts of up to ``rate`` messages."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.clock = rate, clock
        self.tokens, self.last = max(1.0, rate), clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(max(1.0, self.rate), self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(min(rank, len(ordered))) - 1]


class OverheadStats:
    """Server overhead samples (seconds) of the most recent events, thread-safe."""

    def __init__(self, keep: int = 200_000) -> None:
        self._samples: deque[float] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self.sessions_total = 0
        self.sessions_active = 0
        self.errors: dict[str, int] = {}

    def add(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(seconds)

    def count_error(self, code: str) -> None:
        with self._lock:
            self.errors[code] = self.errors.get(code, 0) + 1

    def reset(self) -> None:
        with self._lock:
            self._samples.clear()
            self.errors = {}

    def summary(self) -> dict[str, Any]:
        with self._lock:
            samples = list(self._samples)
            errors = dict(self.errors)
        ms = [s * 1000 for s in samples]
        overhead = {"events": len(ms)}
        if ms:
            overhead.update(p50=round(percentile(ms, 50), 3), p95=round(percentile(ms, 95), 3), max=round(max(ms), 3))
        return {"sessions_active": self.sessions_active, "sessions_total": self.sessions_total,
                "errors": errors, "overhead_ms": overhead}
