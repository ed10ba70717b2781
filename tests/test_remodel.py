"""Re-modelling a finished run's latency under a profile (``live_mind/analysis/remodel.py``) and the
modelled-latency table of ``compare_runs.py``."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from conftest import ROOT, shared_path

from live_mind.analysis.remodel import mean_modelled_latency, modelled_latency
from live_mind.methods.cot import CoTController
from live_mind.methods.livemind import LiveMindController
from live_mind.models.scripted import ScriptedModel
from live_mind.profiles import CostProfile, load_profiles
from live_mind.solver import TimingConfig, solve_question

PROFILE = CostProfile("test", fixed=0.5, uncached=0.01, cached=0.001, completion=0.1)
SLOW = CostProfile("slow", fixed=1.0, uncached=0.05, cached=0.0, completion=0.5)
ROWS = [{"question_id": i, "question": f"Part {i} of the text. " * (1 + i % 4) + "Which one?", "options": ["a", "b", "c"],
         "answer": "B", "answer_index": 1, "cot_content": "", "category": "physics", "src": "t"} for i in range(12)]


def _model(seed: int) -> ScriptedModel:
    rng = random.Random(seed)
    return ScriptedModel(rules=[("so far", "action inference. the parts add up to a long answer text here")],
                         default="Thinking it over. The answer is (B).", seconds=[rng.uniform(0.1, 9.0) for _ in range(40)])


@pytest.mark.parametrize("profile", [PROFILE, SLOW])
def test_replay_of_a_measured_run_equals_the_run_under_the_profile(profile):
    measured = [solve_question(LiveMindController(_model(1)), r, TimingConfig()) for r in ROWS]
    modelled = [solve_question(LiveMindController(_model(2)), r, TimingConfig(profile=profile)) for r in ROWS]
    assert [modelled_latency(r, profile) for r in measured] == pytest.approx([r["time_info"]["latency"] for r in modelled])
    base = [solve_question(CoTController(_model(3)), r, TimingConfig(profile=profile)) for r in ROWS]
    assert [modelled_latency(r, profile) for r in base] == pytest.approx([r["time_info"]["latency"] for r in base])


def test_v1_records_without_steps_use_overhead_plus_final_call():
    record = {"usage": {"prompt_tokens": [100, 300], "completion_tokens": [20, 10]},
              "time_info": {"latency": 9.0, "overhead_time": 2.0}}
    assert modelled_latency(record, PROFILE) == pytest.approx(2.0 + 0.5 + 3.0 + 1.0)
    assert modelled_latency({"error": "x", **record}, PROFILE) is None
    assert mean_modelled_latency([record, {"error": "x"}], PROFILE) == pytest.approx(6.5)


def test_compare_runs_prints_modelled_latency(tmp_path):
    timing = TimingConfig()
    base = [solve_question(CoTController(_model(3)), r, timing) for r in ROWS]
    live = [solve_question(LiveMindController(_model(4)), r, timing) for r in ROWS]
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "live.json").write_text(json.dumps(live))
    result = subprocess.run([sys.executable, str(ROOT / "compare_runs.py"), "base.json", "live.json", "--no-figures"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    csv = (tmp_path / "latency_modelled.csv").read_text().splitlines()
    assert csv[0].startswith("Timing,Base Latency,LiveMind Latency,Ratio")
    assert [line.split(",")[0] for line in csv[1:]] == ["measured (as run)", *sorted(load_profiles())]
    bad = subprocess.run([sys.executable, str(ROOT / "compare_runs.py"), "base.json", "live.json", "--no-figures",
                          "--profile", "nope"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown profile" in bad.stderr


def test_published_70b_run_modelled_by_its_own_profile():
    path = shared_path("data/livemind-v1/llama_3_70b_lm/all.json")
    records = json.loads(path.read_text())
    profile = load_profiles()["paper-llama-3-70b"]
    published = sum(r["time_info"]["latency"] for r in records) / len(records)
    assert mean_modelled_latency(records, profile) == pytest.approx(published, rel=0.01)
