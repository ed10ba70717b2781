"""Two llama.cpp replicas behind vllm-router, live (``benchmarks/scaleout.py``).

Two questions at ``--concurrency 4`` under a timing profile, against one replica alone and
through the router (round robin, consistent hash on the question's ``X-Session-ID``): the
records equal the single-server run's, every call is logged by the replica that served it
(with its question's key), round robin uses both replicas and consistent hashing keeps each
question's calls on one replica, where the engine reuses the question's own earlier prefix.  Skips without
llama-cpp-python's server, vllm-router or the embedded model.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, missing


def _scaleout():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import scaleout
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return scaleout


def test_routing_figures_from_replica_logs():
    def call(replica, key, cached, start):
        return {"replica": replica, "key": key, "engine_cached": cached, "start": start}

    calls = [call("r0", "a", 0, 1), call("r1", "b", 0, 2), call("r0", "a", 30, 3), call("r1", "a", 10, 4),
             call("r1", "b", 50, 5)]
    figures = _scaleout().routing_figures(calls, 2)
    assert figures["calls_per_replica"] == [2, 3]
    assert figures["affinity"] == round((2 / 3 + 1) / 2, 4)  # a: 2 of 3 on r0, its first; b: all on r1
    assert figures["engine_cached_from_step2"] == 30.0  # a's 30 and 10, b's 50: first calls left out
    assert figures["unkeyed_calls"] == 0 and figures["keys"] == 2


def test_own_prefix_is_the_modelled_cache_from_each_questions_second_call():
    def record(*cached):
        return {"steps": [{"cached_tokens": c} for c in cached]}

    assert _scaleout().own_prefix([record(0, 200, 3), record(5, 100)]) == round((200 + 3 + 100) / 3, 2)
    assert _scaleout().own_prefix([record(0)]) is None  # no second call anywhere


@pytest.mark.server
def test_router_keeps_records_and_consistent_hash_keeps_questions_on_one_replica(tmp_path, two_questions):
    for module in ("llama_cpp", "uvicorn", "openai"):
        if importlib.util.find_spec(module) is None:
            missing(f"{module} is not installed (pip install '.[llamacpp,openai]')")
    scaleout = _scaleout()
    try:
        scaleout.router_binary()
    except FileNotFoundError as exc:
        missing(str(exc))
    from live_mind.models.embedded import EmbeddedModelMissing, embedded_gguf_path

    try:
        embedded_gguf_path()
    except EmbeddedModelMissing as exc:
        missing(f"embedded model not installed: {exc}")

    out = tmp_path / "scaleout.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "scaleout.py"), "--replicas", "2",
               "--policies", "round_robin,consistent_hash", "--data_path", str(two_questions), "--num_questions", "1",
               "--concurrency", "4", "--max_new_tokens", "32", "--json", str(out), "--records", str(tmp_path / "rec")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result) == {"single", "round_robin", "consistent_hash"}
    records = json.loads((tmp_path / "rec" / "single.json").read_text())
    calls = sum(len(r["steps"]) for r in records)
    assert len(records) == 2 and not [r for r in records if r["error"]]
    assert result["single"]["calls_per_replica"] == [calls]
    for policy in ("round_robin", "consistent_hash"):
        figures = result[policy]
        assert figures["identical_to_single"], f"{policy}: records differ from the single-server run"
        assert sum(figures["calls_per_replica"]) == calls and figures["unkeyed_calls"] == 0
        assert figures["keys"] == 2, "one stable key per question"
    assert result["consistent_hash"]["affinity"] >= 0.95
    # With every call of a question on one replica (and room for every state), the engine reuses the
    # question's own earlier prefix: what the records' per-question cache says it can.
    hashed = result["consistent_hash"]
    assert hashed["engine_cached_from_step2"] >= 0.9 * hashed["own_prefix_from_step2"] > 0
    # Round robin's affinity is not asserted: two questions whose calls alternate can each stay on one
    # replica by chance (measured: 1.0 once here, 0.70-0.73 on the 14 sample questions).
    assert min(result["round_robin"]["calls_per_replica"]) > 0, "round robin uses both replicas"
