"""The session server's command line: ``serve.py`` is this module's ``main``.

The model flags, their per-model defaults, validation and the run configuration are the
live session's, from the shared command-line module (``cli.py``): ``--model``,
``--assist_model``, ``--action_set``, ``--prompt_format``, ``--max_new_tokens``,
``--inference_max_new_tokens``, ``--prime_actions``, ``--schedule``...  On top come the
server's: address, API key (``auth.py``), limits (``limits.py``), ``--log_sessions`` and
``--typing_speed`` (the default speed of the page's replay button).  Everything is
checked before any model loads (one-line error, exit code 2) and the resolved run
configuration is printed at start (prompt texts and library versions at ``/v1/info``
are left out of the print; ``--log_sessions`` saves the whole configuration).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .. import cli, flags
from ..clock import PAPER_SECONDS_PER_CHAR
from .auth import AuthError, api_key_for, split_list
from .limits import Limits

if TYPE_CHECKING:
    from .session import Engine

_NOT_SERVED = (*cli.NOT_LIVE, "output_file")
_SERVER_ONLY = ("host", "port", "max_sessions", "max_text", "max_message_bytes", "max_rate", "idle_timeout",
                "log_sessions", "log_level", "allowed_hosts", "allowed_origins")
"""Server flags kept out of the run configuration's ``config_id`` (they do not change answers)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = flags.ArgumentParser(description="LiveMind session server: a WebSocket API and a web page")
    cli.add_common_args(p, skip=_NOT_SERVED)
    cli.add_session_args(p)
    add = p.add_argument
    d = Limits()
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other needs $LIVEMIND_API_KEY)")
    add("--port", type=int, default=8000, help="port (default 8000)")
    add("--baseline", default=True, action=argparse.BooleanOptionalAction,
        help="offer the CoT baseline for comparison (default on; a client asks for it per question)")
    add("--typing_speed", type=float, default=PAPER_SECONDS_PER_CHAR, help=f"the page's replay speed, s/char (default {PAPER_SECONDS_PER_CHAR:g}, the paper's)")
    add("--max_sessions", type=int, default=d.max_sessions, help=f"sessions at once (default {d.max_sessions})")
    add("--max_text", type=int, default=d.max_text, help=f"characters of question per session (default {d.max_text})")
    add("--max_message_bytes", type=int, default=d.max_message_bytes, help=f"bytes per message (default {d.max_message_bytes})")
    add("--max_rate", type=float, default=d.max_rate, help=f"messages per second per session (default {d.max_rate:g})")
    add("--idle_timeout", type=float, default=d.idle_timeout, help=f"close a session idle this many seconds (default {d.idle_timeout:g})")
    add("--log_sessions", default=None, metavar="DIR", help="write each answered question's record here (default: nothing is written)")
    add("--allowed_hosts", default=None, metavar="NAMES",
        help="Host header names served besides loopback names and the bound address, comma-separated ('*': any); "
             "others get 403 (guards against DNS rebinding)")
    add("--allowed_origins", default=None, metavar="ORIGINS",
        help="web page origins (e.g. https://app.example) that may open sessions besides the server's own page, "
             "comma-separated ('*': any); others get 403 (guards against cross-site WebSocket hijacking)")
    add("--log_level", default="warning", choices=("debug", "info", "warning", "error"), help="server log level (default warning)")
    return p.parse_args(argv)


def server_settings(args: argparse.Namespace) -> tuple[Limits, str | None]:
    """The server's own flags: limits, key and folder; raises ``cli.UsageError``."""
    if not 0 < args.port < 65536:
        raise cli.UsageError("--port must be in 1..65535")
    limits = Limits(args.max_sessions, args.max_text, args.max_text, args.max_message_bytes, args.max_rate, args.idle_timeout)
    try:
        limits.check()
        key = api_key_for(args.host)
    except (ValueError, AuthError) as exc:
        raise cli.UsageError(str(exc)) from None
    if args.log_sessions:
        folder = Path(args.log_sessions)
        if folder.exists() and not folder.is_dir():
            raise cli.UsageError(f"--log_sessions {folder} is not a folder")
    return limits, key


def validate(args: argparse.Namespace) -> tuple[cli.Setup, Limits, str | None]:
    """The server's settings, then the run's through the one ``cli.validate`` (the server
    flags stay out of its ``config_id``); raises ``cli.UsageError``.  Nothing loads."""
    limits, key = server_settings(args)
    server = {k: v for k, v in vars(args).items() if k in _SERVER_ONLY}
    model_args = argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in _SERVER_ONLY})
    setup = cli.validate(model_args, "serve")
    setup.config["server"] = server
    return setup, limits, key


def build_engine(args: argparse.Namespace, setup: cli.Setup, limits: Limits) -> "Engine":
    """Load the models and build the engine the sessions share.  Its outage guards do
    not latch: a server recovers by itself once its backend is back."""
    from ..loading import baseline_controller, build_controller, load_session_models, method_context
    from .session import Engine

    loaded = load_session_models(setup, limits.max_sessions, args.prefix_cache, latch=False)
    baseline = baseline_controller(setup, loaded) if args.baseline else None
    return Engine(build_controller(setup, loaded), baseline, setup.run, limits,
                  Path(args.log_sessions) if args.log_sessions else None, method_context(setup, loaded))


def printable_config(config: dict) -> str:
    """The run configuration without prompt texts and library versions, one JSON line."""
    return json.dumps({k: v for k, v in config.items() if k not in ("prompt_texts", "versions")}, default=str)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if (code := cli.list_models(args)) is not None:
        return code
    try:
        setup, limits, key = validate(args)
        import uvicorn  # noqa: F401 - the serve extra: fail before loading a model

        from .app import create_app
    except cli.UsageError as exc:
        return cli.fail(str(exc))
    except ImportError as exc:
        return cli.fail(f"{exc.name} is missing: pip install -e '.[serve]'")
    print(f"run configuration: {printable_config(setup.config)}", file=sys.stderr)
    print(f"loading {args.model} ...", file=sys.stderr)
    engine = build_engine(args, setup, limits)
    if engine.log_dir is not None:
        engine.log_dir.mkdir(parents=True, exist_ok=True)
        (engine.log_dir / "config.json").write_text(json.dumps(setup.config, indent=1, default=str), encoding="utf-8")
    app = create_app(engine, key, bound=args.host, allowed_hosts=split_list(args.allowed_hosts),
                     allowed_origins=split_list(args.allowed_origins))
    print(f"serving on http://{args.host}:{args.port}/ ({'API key required' if key else 'loopback only, no key'})",
          file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                ws_max_size=max(1 << 20, 4 * limits.max_message_bytes))
    return 0
