"""vLLM's data-parallel executor on CPU, live (``benchmarks/vllm_dp.py``).

The pure parts (the per-rank counters read from ``/metrics``, the record comparison) run
everywhere.  The live test starts vLLM's OpenAI server on the float32 export of the embedded
model with one engine rank and then with two (one core each), runs LiveMind on two
questions at ``--concurrency 4`` under a timing profile through each, and checks that both
ranks served calls and that the two-rank records equal the one-rank records.  It skips
with the reason when vLLM or the embedded model is absent (and fails under
``$LIVEMIND_REQUIRE_ENGINES``, as CI runs it).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, skip_without_live_vllm


def _vllm_dp():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import vllm_dp
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return vllm_dp


METRICS = """# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="smollm2-135m"} 5.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="smollm2-135m"} 2.0
vllm:request_success_total{engine="1",finished_reason="stop",model_name="smollm2-135m"} 6.0
vllm:request_success_total{engine="1",finished_reason="abort",model_name="smollm2-135m"} 0.0
vllm:num_requests_running{engine="1",model_name="smollm2-135m"} 3.0
"""


def test_calls_per_rank_sums_each_engines_finished_requests():
    dp = _vllm_dp()
    assert dp.calls_per_rank(METRICS, 2) == [7, 6]
    assert dp.calls_per_rank(METRICS, 3) == [7, 6, 0]  # a rank that served nothing says so
    assert dp.calls_per_rank("", 2) == [0, 0]


def test_differences_name_the_fields_that_differ():
    dp = _vllm_dp()

    def record(qid, solution, prompt_tokens=10, cached=0):
        return {"question_id": qid, "time_info": {"latency": 1.0}, "solution": solution,
                "usage": {"prompt_tokens": prompt_tokens, "engine_cached_tokens": cached}}

    single = [record(1, "A"), record(2, "B")]
    assert dp.differences(single, [record(1, "A", cached=7), record(2, "B")]) == []  # the engine's own count is left out
    assert dp.differences(single, [record(1, "A"), record(2, "C", 11)]) == [{"question_id": 2, "fields": ["usage", "solution"]}]
    assert dp.differences(single, [record(3, "A")])[0]["fields"] == ["missing from the one-rank run"]


def test_server_command_sets_the_ranks_and_one_core_each():
    dp = _vllm_dp()
    command = dp.server_command(ROOT / "model", 2, 18000)
    assert command[command.index("--data-parallel-size") + 1] == "2"
    assert "--enable-prefix-caching" in command and command[command.index("--dtype") + 1] == "float32"
    assert dp.server_env(2)["VLLM_CPU_OMP_THREADS_BIND"] == "0|1"
    assert dp.server_env(1)["VLLM_CPU_OMP_THREADS_BIND"] == "0"


@pytest.mark.model
def test_two_data_parallel_ranks_give_the_one_rank_records(tmp_path, two_questions):
    skip_without_live_vllm()
    out = tmp_path / "dp.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "vllm_dp.py"), "--ranks", "2", "--data_path", str(two_questions),
               "--num_questions", "1", "--concurrency", "4", "--max_new_tokens", "32", "--json", str(out),
               "--records", str(tmp_path / "rec")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    one, two = result["ranks_1"], result["ranks_2"]
    records = json.loads((tmp_path / "rec" / "ranks_1.json").read_text())
    assert len(records) == 2 and not [r for r in records if r["error"]]
    calls = sum(len(r["steps"]) for r in records)
    assert sum(one["calls_per_rank"]) == calls, "the one-rank server finished every call"
    assert sum(two["calls_per_rank"]) == calls and min(two["calls_per_rank"]) > 0, "both ranks served calls"
    assert two["identical_to_single"], f"records differ from the one-rank run: {two['differing']}"
