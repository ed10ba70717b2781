"""Loading a causal LM for the transformers backend: dtypes and GGUF files.

Kept apart from the model class so the GGUF export (``export.py``) loads the embedded
model exactly as the backend does.
"""

from __future__ import annotations

import inspect

DEFAULT_DTYPE = "bfloat16"
"""Faster than float32 for the embedded model on the 2-core development CPU: greedy
decode about 24 vs 17 tok/s with 2 threads (best of 4, machine shared), 12.7 vs 11.2
tok/s with 1 thread, and a 42-token prefill about twice as fast.  Prefix reuse is
token-identical in both (tests)."""

DTYPES = {
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float32": "float32", "fp32": "float32",
    "float16": "float16", "fp16": "float16",
    "auto": "auto",
}


def dense_gguf_option(gguf_file: str | None) -> dict:
    """Ask transformers to unpack GGUF weights into a plain dense model at load time.

    Recent transformers can keep GGUF blocks packed, but only with a matmul kernel it
    fetches from the Hugging Face Hub at run time; without one it unpacks anyway.  We ask
    for the dense model directly: no hub access, the same weights, fast CPU matmuls (the
    135M model needs about 0.5 GB in float32).  Older versions always unpack.
    """
    if not gguf_file:
        return {}
    try:
        from transformers import GgufConfig
    except ImportError:
        return {}
    if "dequantize" not in inspect.signature(GgufConfig.__init__).parameters:
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def load_options(dtype: str, gguf_file: str | None) -> dict:
    """Keyword arguments of ``from_pretrained`` for a dtype name (``DTYPES``) and an
    optional GGUF file: the dtype under the keyword this transformers version reads, the
    file, and the dense unpacking of its weights."""
    import torch
    import transformers

    value = DTYPES[dtype]
    torch_dtype = value if value == "auto" else getattr(torch, value)  # a torch dtype by name
    major, minor = (int(p) for p in transformers.__version__.split(".")[:2])
    dtype_kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    return {dtype_kw: torch_dtype, **({"gguf_file": gguf_file} if gguf_file else {}), **dense_gguf_option(gguf_file)}
