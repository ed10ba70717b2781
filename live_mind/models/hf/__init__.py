"""The transformers backend: ``model`` (``TransformersChatModel``, its own greedy loop)
and ``batch`` (several plain requests decoded together)."""

from .model import TransformersChatModel

__all__ = ["TransformersChatModel"]
