"""Export a packaged GGUF to a Hugging Face folder that vLLM can load.

vLLM reads Hugging Face checkpoints (``config.json`` + safetensors + tokenizer files);
the embedded default model ships only as a Q4_1 GGUF (``embedded.py``), the Qwen2.5-Coder
models as Q4_K_M GGUFs in part packages (``parts.py``).  This module dequantizes such a
file once through ``transformers`` and writes a plain folder:

* ``model.safetensors`` -- the dense weights in the chosen dtype (bf16: about 260 MB).
  transformers refuses ``save_pretrained`` on a model loaded from GGUF, so the state
  dict is written with ``safetensors`` directly; the tied output embedding
  (``lm_head.weight``, the same tensor as the input embedding) is left out, as a
  ``tie_word_embeddings`` checkpoint expects.
* ``config.json`` -- the model's config with ``architectures`` set to the class
  transformers loaded (``LlamaForCausalLM`` for SmolLM2, ``Qwen2ForCausalLM`` for Qwen):
  a GGUF-loaded config has none, and vLLM picks the model class from it.
* the tokenizer files (with the chat template) and ``generation_config.json``.

The folder goes to ``$LIVEMIND_CACHE/<name>-hf-<dtype>`` (``smollm2-135m`` for the
embedded model, the part model's key otherwise; default cache: ``~/.cache/live_mind``).  It is written to a temporary sibling and renamed into place,
so an interrupted export never leaves a half-written folder that looks complete; a
later call finds the finished folder and returns at once.  Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .cachedir import CACHE_ENV, DEFAULT_CACHE, cache_dir  # noqa: F401  (re-exported: the cache's home before cachedir.py)
from .embedded import EMBEDDED, packaged_gguf_path

_DONE = "live_mind_export.json"
"""Written last: its presence marks a complete export."""


def embedded_hf_dir(dtype: str = "bfloat16", value: str = EMBEDDED) -> Path:
    """Where the exported folder of a packaged model (``"embedded"`` or ``"pypi:NAME"``)
    lives (it may not exist yet)."""
    from .parts import part_model

    name = "smollm2-135m" if value == EMBEDDED else part_model(value).key
    return cache_dir() / f"{name}-hf-{dtype}"


def is_exported(folder: Path) -> bool:
    """Whether ``folder`` holds a finished export."""
    return (folder / _DONE).is_file()


def export_embedded_hf(dest: str | os.PathLike[str] | None = None, dtype: str = "bfloat16", value: str = EMBEDDED) -> Path:
    """Export a packaged GGUF (the embedded one by default) to a Hugging Face folder once;
    return the folder."""
    folder = Path(dest).expanduser() if dest else embedded_hf_dir(dtype, value)
    if is_exported(folder):
        return folder
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .hf.loading import load_options

    gguf = packaged_gguf_path(value)
    torch_dtype = getattr(torch, dtype)  # a torch/transformers object; the attribute depends on the library version
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    hf_model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), **load_options(dtype, gguf.name))

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
    try:
        tied = bool(getattr(hf_model.config, "tie_word_embeddings", False))  # a torch/transformers object; the attribute depends on the library version
        state = {
            name: tensor.detach().to(torch_dtype).contiguous()
            for name, tensor in hf_model.state_dict().items()
            if not (tied and name == "lm_head.weight")
        }
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config = hf_model.config.to_dict()
        config["architectures"] = [type(hf_model).__name__]
        config["torch_dtype"] = dtype
        config.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(config, indent=2, default=str), encoding="utf-8")
        tokenizer.save_pretrained(str(tmp))
        if getattr(hf_model, "generation_config", None) is not None:  # a torch/transformers object; the attribute depends on the library version
            hf_model.generation_config.save_pretrained(str(tmp))
        (tmp / _DONE).write_text(json.dumps({"source": str(gguf), "dtype": dtype}), encoding="utf-8")
        if folder.exists():  # an unfinished folder from an older, interrupted export
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
