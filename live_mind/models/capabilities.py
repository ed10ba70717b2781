"""What a backend can do, asked of the backend itself.

Every model class declares a ``capabilities`` class attribute (``base.Capabilities``);
the scripts, the benchmarks and the command line ask ``capabilities(model_or_spec)``
instead of comparing backend names, so a new backend is one row of the backend table
(``registry.BACKEND_TABLE``) plus its own declaration.  A class whose capabilities depend
on how an entry configures it (vLLM's streaming-input sessions) also defines
``entry_capabilities(params)``.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from .base import Capabilities, entry_capabilities, model_capabilities
from .registry import ModelSpec, backend_record


def backend_class(backend: str) -> type:
    """The model class a backend builds (a factory function names it as its return type)."""
    factory = backend_record(backend).constructor()
    if inspect.isclass(factory):
        return factory
    return typing.get_type_hints(factory)["return"]


def capabilities(target: Any) -> Capabilities:
    """The capabilities of a loaded model, a model entry (``ModelSpec``) or a backend name.
    An object that declares none has none."""
    if isinstance(target, (str, ModelSpec)):
        spec_params = target.params if isinstance(target, ModelSpec) else {}
        return entry_capabilities(backend_class(target if isinstance(target, str) else target.backend), spec_params)
    return model_capabilities(target)
