"""Per-question affinity keys for routers in front of several OpenAI-compatible replicas.

A LiveMind question sends several calls whose prompts share a growing prefix (paper §3:
each new segment extends the same conversation).  A replica that keeps a prefix cache
(vLLM serve with prefix caching, a llama.cpp server's slot) reuses that prefix only when
the question's next call comes back to it.  A router that spreads calls over replicas
(round robin) loses the prefix at each step; a session or consistent-hash router keeps
calls with one key on one replica.  This module turns a request's ``cache_key`` (the
question id in the solvers, ``serve-<session>-<n>`` in the session server) into what such
a router reads:

* a header -- ``affinity_header = "X-Session-ID"`` in a models-file entry (vllm-router's
  ``consistent_hash`` reads ``X-Session-ID`` first, then ``X-User-ID``; vLLM's production
  stack routes on a header named in its ``--session-key``);
* a body field -- ``affinity_field = "user"`` (or any field name the router reads); the
  replicas see it too, so choose one they accept (OpenAI's ``user`` is accepted by vLLM
  serve and llama.cpp servers).

An entry that sets neither sends exactly what it sent before, and a request without a
``cache_key`` (one-off calls) carries no key.
"""

from __future__ import annotations

from typing import Any


def check_names(header: str | None, field: str | None) -> None:
    """Reject names that cannot go on the wire (a ``ValueError`` at construction)."""
    if header is not None and (not header or any(c in header for c in " :\r\n")):
        raise ValueError(f"affinity_header must be an HTTP header name, got {header!r}")
    if field is not None and not field:
        raise ValueError("affinity_field must be a non-empty body field name")


def affinity_args(key: str | None, header: str | None, field: str | None) -> tuple[dict[str, str], dict[str, Any]]:
    """(extra headers, extra body fields) that carry ``key``; both empty without a key
    or without a configured name."""
    if key is None:
        return {}, {}
    return ({header: key} if header else {}), ({field: key} if field else {})
