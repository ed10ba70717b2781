"""Fitting token-cost profiles from run files (ours and the authors' v1 files)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, shared_path

from live_mind.analysis.fit import FitError, Sample, file_samples, fit, record_samples

TRUE = dict(fixed=0.2, uncached=0.002, cached=0.0005, completion=0.05)


def _seconds(p, c, k):
    return TRUE["fixed"] + TRUE["uncached"] * (p - c) + TRUE["cached"] * c + TRUE["completion"] * k


def test_exact_samples_give_back_the_coefficients():
    samples = [Sample(p, c, k, _seconds(p, c, k)) for p, c, k in
               [(100, 0, 10), (300, 200, 40), (500, 100, 5), (800, 700, 60), (50, 0, 80), (400, 390, 1)]]
    fitted = fit(samples, "x")
    assert fitted.cached_fitted and fitted.r2 == pytest.approx(1.0)
    for key, value in TRUE.items():
        assert getattr(fitted.profile, key) == pytest.approx(value, abs=1e-9)
    assert fitted.median_rel_error == pytest.approx(0.0, abs=1e-9)


def test_no_cached_tokens_sets_the_cached_cost():
    samples = [Sample(p, 0, k, _seconds(p, 0, k)) for p, k in [(100, 10), (300, 40), (500, 5), (800, 60), (50, 80)]]
    fitted = fit(samples, "x", cached_default=0.123)
    assert not fitted.cached_fitted and fitted.profile.cached == 0.123
    assert fitted.profile.completion == pytest.approx(0.05)
    with pytest.raises(FitError, match="at least 4"):
        fit(samples[:3], "x")


def test_samples_of_our_records_and_v1_records():
    ours = {"steps": [{"prompt_tokens": 10, "cached_tokens": 4, "completion_tokens": 3, "seconds": 1.5},
                      {"prompt_tokens": 20, "cached_tokens": 0, "completion_tokens": 7, "seconds": 2.5}]}
    assert record_samples(ours) == [Sample(10, 4, 3, 1.5), Sample(20, 0, 7, 2.5)]
    v1 = {"usage": {"prompt_tokens": [209, 728], "completion_tokens": [18, 11]},
          "time_info": {"latency": 1.48, "overhead_time": 0}}
    assert record_samples(v1) == [Sample(728, 0, 11, 1.48)]
    assert record_samples({**v1, "time_info": {"latency": 3.0, "overhead_time": 1.2}}) == []  # final call time unknown
    assert record_samples({**ours, "error": "ModelError: x"}) == []


def test_fit_profile_script(tmp_path):
    records = [{"usage": {"prompt_tokens": [p], "completion_tokens": [k]},
                "time_info": {"latency": _seconds(p, 0, k), "overhead_time": 0}}
               for p, k in [(100, 10), (300, 40), (500, 5), (800, 60), (50, 80)]]
    run = tmp_path / "all.json"
    run.write_text(json.dumps(records), encoding="utf-8")
    result = subprocess.run([sys.executable, str(ROOT / "fit_profile.py"), str(run), "--name", "mine"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "[profiles.mine]" in result.stdout and "R² 1.000000" in result.stdout
    bad = subprocess.run([sys.executable, str(ROOT / "fit_profile.py"), str(tmp_path / "none.json"), "--name", "x"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and bad.stderr.count("\n") == 1


def test_fit_on_the_published_70b_run():
    path = shared_path("data/livemind-v1/llama_3_70b_lm/all.json")
    samples = file_samples(path)
    fitted = fit(samples, "paper-llama-3-70b")
    assert len(samples) >= 1000
    assert fitted.r2 >= 0.999
    assert fitted.profile.completion == pytest.approx(0.053, abs=0.002)


def test_relative_fit_and_nonnegative_fixed():
    true = dict(fixed=0.0, uncached=0.002, cached=0.0005, completion=0.05)
    points = [(100, 0, 10), (300, 200, 40), (500, 100, 5), (800, 700, 60), (50, 0, 80), (400, 390, 1)]
    # a little noise that pulls the plain intercept below zero
    samples = [Sample(p, c, k, (true["uncached"] * (p - c) + true["cached"] * c + true["completion"] * k) * (1.08 if k > 50 else 1.0))
               for p, c, k in points]
    assert fit(samples, "x").profile.fixed < 0
    guarded = fit(samples, "x", relative=True, nonnegative_fixed=True)
    assert guarded.profile.fixed == 0.0 and guarded.profile.completion > 0


def test_nonnegative_fit_keeps_every_coefficient_at_or_above_zero():
    from live_mind.analysis.fit import Sample, fit

    # cached tokens that seem to make calls *faster* than no prompt at all: a free fit goes below 0
    samples = [Sample(100, 0, 10, 2.0), Sample(200, 0, 10, 3.0), Sample(300, 250, 10, 0.5), Sample(400, 390, 20, 1.0),
               Sample(150, 0, 40, 5.0), Sample(500, 480, 5, 0.2)]
    free = fit(samples, "free")
    assert min(free.profile.cached, free.profile.fixed) < 0
    bounded = fit(samples, "bounded", nonnegative=True)
    p = bounded.profile
    assert min(p.fixed, p.uncached, p.cached, p.completion) >= 0
    # no non-negative profile fits better (a coarse grid around the answer)
    def residual(f, u, c, k):
        return sum((f + u * (s.prompt - s.cached) + c * s.cached + k * s.completion - s.seconds) ** 2 for s in samples)
    best = residual(p.fixed, p.uncached, p.cached, p.completion)
    for df in (0.0, 0.05):
        for dk in (-0.005, 0.005):
            assert residual(p.fixed + df, p.uncached, p.cached, max(0.0, p.completion + dk)) >= best - 1e-9
