"""serve.py's HTTP routes fuzzed from their own OpenAPI schema with schemathesis: bodies,
query strings and headers generated from the schema (and against it: wrong types,
missing fields, NaN), sent in-process (ASGI, nothing listens on a port).  No answer may
be a 5xx while the backend serves.  Bounded: a few dozen requests per route, and a typing
limit (``idle_timeout``) that keeps a generated ``typing_speed`` from typing for long."""

from __future__ import annotations

import dataclasses

from conftest import require_module
from hypothesis import HealthCheck, settings

require_module("fastapi", "the serve extra is not installed: pip install -e '.[serve]'")
schemathesis = require_module("schemathesis", "schemathesis is not installed: pip install -e '.[test]'")

from schemathesis.checks import not_a_server_error  # noqa: E402
from test_serve_inputs import engine  # noqa: E402

from live_mind.serve.app import create_app  # noqa: E402
from live_mind.serve.limits import Limits  # noqa: E402

HOST = {"Host": "127.0.0.1:8000"}  # the server refuses other names (test_serve_guard.py)
APP = create_app(dataclasses.replace(engine(), limits=Limits(idle_timeout=0.5, max_rate=10_000)))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, headers=HOST)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error(case):
    case.call_and_validate(headers=HOST, checks=[not_a_server_error])


def test_the_schema_lists_the_http_routes():
    paths = set(APP.openapi()["paths"])
    assert {"/v1/answer", "/healthz", "/v1/info", "/v1/stats", "/v1/stats/reset", "/v1/samples"} <= paths
