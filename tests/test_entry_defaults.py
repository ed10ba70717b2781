"""A model entry may choose the LiveMind settings its model runs best with (action set,
prompt format, granularity, answer rule): flag > entry > the paper's.  Entries that
choose none keep the paper's settings and their config_id."""

from __future__ import annotations

import json

import pytest
from test_validation import run_script

from live_mind.models import registry

MODELS = """
[models.tuned]
backend = "scripted"
action_set = "SAS"
prompt_format = "U-PLI"
granularity = "clause"
answer_rule = "extended"
default = "Working through it, the answer is (A)."

[models.plain]
backend = "scripted"
default = "Working through it, the answer is (A)."
"""


def _config(tmp_path, name, *args):
    models = tmp_path / "models.toml"
    models.write_text(MODELS, encoding="utf-8")
    out = tmp_path / name / "all.json"
    result, _ = run_script("run_solver.py", ["--models", str(models), "--output_file", str(out), "--num_questions", "1",
                                             "--use_lm", *args], tmp_path, scripted=False)
    assert result.returncode == 0, result.stderr
    return json.loads(out.with_suffix(".config.json").read_text()), json.loads(out.read_text())


def test_entry_settings_apply_and_flags_override(tmp_path):
    tuned, records = _config(tmp_path, "tuned", "--model", "tuned")
    assert (tuned["action_set"], tuned["prompt_format"], tuned["granularity"], tuned["answer_rule"]) == (
        "SAS", "U-PLI", "clause", "extended")
    assert all(r["answer_rule"] == "extended" for r in records)
    flagged, _ = _config(tmp_path, "flagged", "--model", "tuned", "--action_set", "CAS", "--prompt_format", "v1",
                         "--granularity", "sentence", "--answer_rule", "paper")
    assert (flagged["action_set"], flagged["prompt_format"], flagged["granularity"]) == ("CAS", "v1", "sentence")
    assert "answer_rule" not in flagged


def test_an_entry_without_settings_runs_the_papers(tmp_path):
    plain, _ = _config(tmp_path, "plain", "--model", "plain")
    explicit, _ = _config(tmp_path, "explicit", "--model", "plain", "--action_set", "CAS", "--prompt_format", "v1",
                          "--granularity", "sentence")
    assert (plain["action_set"], plain["prompt_format"], plain["granularity"]) == ("CAS", "v1", "sentence")
    assert plain["config_id"] == explicit["config_id"]


def test_entry_prompts_file_and_the_default_flag(tmp_path):
    models = tmp_path / "models.toml"
    models.write_text('[models.p]\nbackend = "scripted"\nprompts = "mine.toml"\ndefault = "The answer is (A)."\n'
                      '[models.packaged]\nbackend = "scripted"\nprompts = "prompts_reasoning.toml"\n', encoding="utf-8")
    (tmp_path / "mine.toml").write_text('cot_system = "Think, then answer in the form The answer is (X)."\n', encoding="utf-8")
    specs = registry.load_specs(models)
    assert registry.prompts_path(specs["p"]) == tmp_path / "mine.toml"  # beside the models file
    assert registry.prompts_path(specs["packaged"]).parent == registry.DEFAULT_MODELS_FILE.parent  # a packaged file
    runs = {}
    for name, extra in (("entry", []), ("default", ["--prompts", "default"])):
        out = tmp_path / name / "all.json"
        result, _ = run_script("run_solver.py", ["--models", str(models), "--model", "p", "--num_questions", "1",
                                                 "--output_file", str(out), *extra], tmp_path, scripted=False)
        assert result.returncode == 0, result.stderr
        runs[name] = json.loads(out.with_suffix(".config.json").read_text())
    assert runs["entry"]["prompt_texts"]["cot_system"] == "Think, then answer in the form The answer is (X)."
    assert runs["default"]["prompt_texts"]["cot_system"] != runs["entry"]["prompt_texts"]["cot_system"]


def test_the_qwen_entries_default_to_the_measured_settings():
    specs = registry.load_specs()
    for name in ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b-vllm", "qwen2.5-coder-1.5b-server"):
        spec = specs[name]
        assert spec.defaults == {"action_set": "SAS", "answer_rule": "extended"} and spec.parse == "lenient", name
        assert registry.prompts_path(spec).is_file()
    assert specs["smollm2-135m"].defaults == {} and specs["llama-3-70b"].prompts is None  # the paper's models keep the paper's


def test_every_engine_of_the_1_5b_runs_the_same_method_settings():
    """The 1.5B on llama.cpp in process, on vLLM and behind llama-server differ in the
    engine only: a run's method settings must not depend on which one served it."""
    specs = registry.load_specs()

    def method(spec):
        return (spec.defaults, spec.parse, spec.prompts, spec.prime_actions, spec.constrain_actions,
                spec.max_new_tokens, spec.inference_max_new_tokens, spec.timing)

    engines = ("qwen2.5-coder-1.5b-vllm", "qwen2.5-coder-1.5b-server")
    for name in engines:
        assert method(specs[name]) == method(specs["qwen2.5-coder-1.5b"]), name
    assert specs["qwen2.5-coder-1.5b-server"].params["tokenizer"] == specs["qwen2.5-coder-1.5b"].params["gguf"]


@pytest.mark.parametrize("key,value", [("action_set", "ALL"), ("prompt_format", "v3"), ("granularity", "page"),
                                       ("answer_rule", "any")])
def test_bad_entry_setting_is_a_config_error(tmp_path, key, value):
    bad = tmp_path / "m.toml"
    bad.write_text(f'[models.x]\nbackend = "scripted"\n{key} = "{value}"\n', encoding="utf-8")
    with pytest.raises(registry.ConfigError, match=f"{key} must be one of"):
        registry.load_specs(bad)
