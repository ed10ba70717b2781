"""Who may use the server: loopback by default, an API key for anything else.

``serve.py`` binds 127.0.0.1 unless ``--host`` says otherwise; a host that is not a
loopback address needs an API key in the environment variable ``LIVEMIND_API_KEY``
(checked before any model loads).  When a key is set -- on any host -- every request
must carry it as a bearer token (``Authorization: Bearer KEY``; a browser's WebSocket
cannot set headers, so it may send ``api_key`` in its ``start`` message instead).  The
comparison takes constant time (``hmac.compare_digest``) and the key is never logged,
printed or echoed.

Which pages and names may reach the server (``allowed_request``): a browser lets any web
page open a WebSocket to ``ws://127.0.0.1:8000`` (WebSockets are outside CORS), and a
DNS-rebinding name can make the user's browser send HTTP requests there.  So, by
default, a request whose ``Host`` is neither a loopback name nor the bound address, and a
request (WebSocket handshake or HTTP) whose ``Origin`` is not the server's own, are
refused with 403 before anything else happens.  A request without ``Origin`` (curl,
scripts: not a browser) passes the origin check.  ``--allowed_hosts`` and
``--allowed_origins`` (comma-separated, ``*`` for any) open them on purpose; a server
bound to every interface (``0.0.0.0``, ``::``), which needs an API key, takes any Host.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
from urllib.parse import urlsplit

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
    return hmac.compare_digest(given.encode(), expected.encode())  # str.encode: UTF-8


_BRACKETED = re.compile(r"\[([^\]]*)\](?::[0-9]+)?")
"""``[addr]`` or ``[addr]:port`` (an IPv6 address); the address is group 1."""
_NAME_PORT = re.compile(r"([^:]*):[0-9]+")
"""``name:port`` with one colon and a numeric port; the name is group 1."""


def _hostname(host: str) -> str:
    """The name of a ``Host`` header or an address, without port or IPv6 brackets; anything
    else (``[::1]x]``, ``name:abc``, a bare IPv6 address) is returned whole, so that it
    matches no loopback name."""
    host = host.strip().lower()
    found = _BRACKETED.fullmatch(host) or _NAME_PORT.fullmatch(host)
    return found.group(1) if found else host


def host_allowed(host: str | None, bound: str, allowed: tuple[str, ...] = ()) -> bool:
    """Whether a request's ``Host`` names this server: a loopback name or address, the
    bound address, or one of ``allowed`` (``*``: any)."""
    if "*" in allowed or _hostname(bound) in ("0.0.0.0", "::", ""):
        return True
    if not host:
        return False
    name = _hostname(host)
    return is_loopback(name) or name.endswith(".localhost") or name == _hostname(bound) or name in {_hostname(a) for a in allowed}


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...] = ()) -> bool:
    """Whether a request's ``Origin`` is the server's own page (same host and port as the
    ``Host`` header) or one of ``allowed`` (``*``: any); no ``Origin``: not a browser."""
    if origin is None or "*" in allowed:
        return True
    if origin.rstrip("/").lower() in {a.rstrip("/").lower() for a in allowed}:
        return True
    parts = urlsplit(origin.strip().lower())
    return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc == (host or "").strip().lower()


def allowed_request(headers: dict[str, str], bound: str, hosts: tuple[str, ...] = (), origins: tuple[str, ...] = ()) -> str | None:
    """Why a request is refused (``None``: it may go on); ``headers`` lower-case names."""
    host = headers.get("host")
    if not host_allowed(host, bound, hosts):
        return f"Host {host!r} is not this server's name (--allowed_hosts opens it)"
    if not origin_allowed(headers.get("origin"), host, origins):
        return f"Origin {headers.get('origin')!r} is not this server's page (--allowed_origins opens it)"
    return None


def split_list(value: str | None) -> tuple[str, ...]:
    """A comma-separated flag value as a tuple of its non-empty items."""
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())
