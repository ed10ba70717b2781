"""``--timing model``: each model's calls are charged by the profile its entry names, so a
collaborative run charges the inference model's calls at its cost and the answering
model's final call at the other's (scripted models, run_solver.py end to end)."""

from __future__ import annotations

import json

import pytest
from test_validation import assert_rejected, run_script

from live_mind.analysis.remodel import replay
from live_mind.models import registry
from live_mind.profiles import ProfileError, load_profiles
from live_mind.runconfig import role_profiles

PROFILES = """
[profiles.big]
fixed = 1.0
uncached = 0.01
cached = 0.001
completion = 0.5

[profiles.small]
fixed = 0.1
uncached = 0.001
cached = 0.0001
completion = 0.05
"""

MODELS = """
[models.big]
backend = "scripted"
timing = "big"
marker = "${LIVEMIND_TEST_MARKER:-}"
default = "Working through it, the answer is (A)."
rules = { "problem so far" = "action inference. The statement so far fixes the main quantity." }

[models.small]
backend = "scripted"
timing = "small"
marker = "${LIVEMIND_TEST_MARKER:-}"
default = "Working through it, the answer is (A)."

[models.untimed]
backend = "scripted"
marker = "${LIVEMIND_TEST_MARKER:-}"
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "profiles.toml").write_text(PROFILES, encoding="utf-8")
    (tmp_path / "models.toml").write_text(MODELS, encoding="utf-8")
    return tmp_path / "models.toml", tmp_path / "profiles.toml"


def _solve(tmp_path, files, name, *args):
    models, profiles = files
    out = tmp_path / name / "all.json"
    result, _ = run_script("run_solver.py", ["--models", str(models), "--profiles", str(profiles), "--output_file", str(out),
                                             "--num_questions", "1", *args], tmp_path, scripted=False)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text()), json.loads(out.with_suffix(".config.json").read_text())


def _cost(step, profile):
    return profile.seconds(step["prompt_tokens"], step["cached_tokens"], step["completion_tokens"])


def test_collaborative_run_charges_each_model_its_own_profile(tmp_path, files):
    known = load_profiles(files[1])
    records, config = _solve(tmp_path, files, "collab", "--use_lm", "--model", "big", "--assist_model", "small", "--timing", "model")
    assert config["timing_profile"]["name"] == "big" and config["answer_timing_profile"]["name"] == "small"
    for record in records:
        *inference, final = record["steps"]
        assert inference and final["kind"] == "final"
        for step in inference:
            assert step["end"] - step["start"] == pytest.approx(_cost(step, known["big"]))
        assert final["end"] - final["start"] == pytest.approx(_cost(final, known["small"]))
        assert final["end"] - final["start"] != pytest.approx(_cost(final, known["big"]))
        # the re-modeller, given the same two profiles, replays the run's own latency
        again = replay(record, known["big"], answer_profile=known["small"])
        assert again.exact and again.latency == pytest.approx(record["time_info"]["latency"])


def test_one_named_profile_still_charges_every_call(tmp_path, files):
    known = load_profiles(files[1])
    records, config = _solve(tmp_path, files, "one", "--use_lm", "--model", "big", "--assist_model", "small", "--timing", "big")
    assert "answer_timing_profile" not in config
    final = records[0]["steps"][-1]
    assert final["end"] - final["start"] == pytest.approx(_cost(final, known["big"]))


def test_cot_under_model_timing_uses_the_entry_profile(tmp_path, files):
    known = load_profiles(files[1])
    records, config = _solve(tmp_path, files, "cot", "--model", "small", "--timing", "model")
    assert "answer_timing_profile" not in config and config["timing_profile"]["name"] == "small"
    assert records[0]["time_info"]["latency"] == pytest.approx(_cost(records[0]["steps"][0], known["small"]))


def test_an_entry_without_a_profile_is_refused_in_one_line(tmp_path, files):
    models, profiles = files
    result, seconds = run_script("run_solver.py", ["--models", str(models), "--profiles", str(profiles), "--use_lm", "--model", "big",
                                                   "--assist_model", "untimed", "--timing", "model"], tmp_path, scripted=False)
    assert_rejected(result, seconds, tmp_path, "model 'untimed' names no timing profile")


def test_role_profiles(files):
    specs = registry.load_specs(files[0])
    big, small = role_profiles("model", str(files[1]), {"model": specs["big"], "assist_model": specs["small"]})
    assert (big.name, small.name) == ("big", "small")
    same = role_profiles("small", str(files[1]), {"model": specs["big"], "assist_model": specs["untimed"]})
    assert same[0] is same[1] and same[0].name == "small"
    assert role_profiles(None, None, {"model": specs["untimed"]}) == (None, None)
    with pytest.raises(ProfileError, match="names no timing profile"):
        role_profiles("model", None, {"model": specs["untimed"]})


def test_timing_key_must_be_a_string(tmp_path):
    bad = tmp_path / "m.toml"
    bad.write_text('[models.x]\nbackend = "scripted"\ntiming = 3\n', encoding="utf-8")
    with pytest.raises(registry.ConfigError, match="timing must be a string"):
        registry.load_specs(bad)


def test_packaged_reasoning_entries_name_packaged_profiles():
    specs, known = registry.load_specs(), load_profiles()
    for name in ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b-vllm", "qwen2.5-coder-1.5b-server"):
        assert specs[name].timing in known, name


def test_the_run_config_carries_both_profiles(tmp_path, files):
    """Validated in process (``cli.validate``, as the scripts do): the run charges the
    inference model's profile and the answering model's, and saves both."""
    import run_solver
    from live_mind import cli

    models, profiles = files
    setup = cli.validate(run_solver.parse_args(["--models", str(models), "--profiles", str(profiles), "--use_lm", "--model", "big",
                                                "--assist_model", "small", "--timing", "model",
                                                "--output_file", str(tmp_path / "x.json")]), "time_info")
    known = load_profiles(profiles)
    assert setup.run.profile == known["big"] and setup.run.answer_profile == known["small"]
    assert setup.config["timing_profile"] == known["big"].as_dict()
    assert setup.config["answer_timing_profile"] == known["small"].as_dict()
