"""How the OpenAI-compatible backend sorts and waits out a server's errors.

An error that says the server is away (``infrastructure_failure``: connection refused
or reset, timeouts, HTTP 429 and every 5xx) is retried by ``openai_compat`` with
exponential backoff (``backoff_delay``), honouring a server's ``Retry-After``
(``retry_after``); any other error says something about the request itself and is not
retried.  Pure functions, so the retry schedule is testable without a server.
"""

from __future__ import annotations


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
    if retry_after is not None and retry_after >= 0:
        return min(cap, retry_after)
    return min(cap, base * (2 ** attempt))


def infrastructure_failure(exc: BaseException) -> bool:
    """Whether an exception of the ``openai`` client says the server is away rather than
    that it refused this request: connection refused or reset and timeouts
    (``APIConnectionError``, ``APITimeoutError``), HTTP 429 and every 5xx."""
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


def retry_after(exc: Exception) -> float | None:
    """The seconds a server asked the client to wait (``Retry-After``), if it said."""
    response = getattr(exc, "response", None)  # a library object (tokenizer, config, response): the attribute depends on its version
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
