"""Who may use the server: loopback by default, an API key for anything else.

``serve.py`` binds 127.0.0.1 unless ``--host`` says otherwise; a host that is not a
loopback address needs an API key in the environment variable ``LIVEMIND_API_KEY``
(checked before any model loads).  When a key is set -- on any host -- every request
must carry it as a bearer token (``Authorization: Bearer KEY``; a browser's WebSocket
cannot set headers, so it may send ``api_key`` in its ``start`` message instead).  The
comparison takes constant time (``hmac.compare_digest``) and the key is never logged,
printed or echoed.
"""

from __future__ import annotations

import hmac
import ipaddress
import os

API_KEY_ENV = "LIVEMIND_API_KEY"
MIN_KEY_LENGTH = 16


class AuthError(ValueError):
    """The server cannot start safely with these settings (one-line message)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key_for(host: str, environ: dict[str, str] | None = None) -> str | None:
    """The key the server requires (``None``: none, loopback only); ``AuthError`` when
    the host is reachable from elsewhere and no usable key is set."""
    key = (os.environ if environ is None else environ).get(API_KEY_ENV) or None
    if key is not None and len(key) < MIN_KEY_LENGTH:
        raise AuthError(f"${API_KEY_ENV} is too short: use at least {MIN_KEY_LENGTH} characters "
                        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    if key is None and not is_loopback(host):
        raise AuthError(f"--host {host} is reachable from other machines: set an API key in ${API_KEY_ENV} "
                        "(clients send it as 'Authorization: Bearer KEY'), or bind 127.0.0.1")
    return key


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def key_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time check; with no key configured everything matches."""
    if expected is None:
        return True
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
