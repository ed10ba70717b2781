"""The vLLM backend: ``model`` (``VLLMChatModel``: the offline engine, and the entry
point to the others), ``async_engine`` (``AsyncLLM``, requests batched continuously),
``sessions`` (streaming-input sessions) and ``mapping`` (requests and outputs)."""

from .model import VLLMChatModel, environment_problem

__all__ = ["VLLMChatModel", "environment_problem"]
