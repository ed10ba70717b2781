"""Segmentation (paper §3.1 sentences; v2 clauses, words, characters, short-piece merge)."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest
from conftest import shared_path
from hypothesis import given, settings
from hypothesis import strategies as st

from live_mind.segment import (
    GRANULARITIES,
    count_sentences,
    merge_short,
    split,
    split_sentences,
    split_words,
)

QUESTIONS_1400 = "data/mmlu-pro-1400/data/test-00000-of-00001.parquet"
V1_RUN = "data/livemind-v1/llama_3_70b_lm"


# --------------------------------------------------------------------------- sentences


def test_sentences_basic():
    text = "The sky is blue. Why is it blue? Explain briefly."
    assert split_sentences(text) == ["The sky is blue. ", "Why is it blue? ", "Explain briefly."]
    assert count_sentences(text) == 3


def test_sentences_keep_abbreviations_and_decimals():
    text = "Dr. Smith measured 3.5 kg in the U.S. lab. What is the mass in grams?"
    assert count_sentences(text) == 2
    assert split(text) == ["Dr. Smith measured 3.5 kg in the U.S. lab. ", "What is the mass in grams?"]


def test_sentences_edge_cases():
    assert split_sentences("") == []
    assert count_sentences("") == 0
    assert count_sentences("   \n ") == 0
    assert count_sentences("No final stop") == 1
    # leading whitespace stays with the first sentence, trailing with the last
    assert split_sentences("  A cat sat. A dog ran.  ") == ["  A cat sat. ", "A dog ran.  "]


def test_sentences_newlines_stay_with_earlier_piece():
    text = "First line.\nSecond line.\n\nThird line."
    pieces = split_sentences(text)
    assert pieces == ["First line.\n", "Second line.\n\n", "Third line."]


def test_counts_reproduce_paper_length_table():
    """Length = sentences + 1 reproduces the v1 ``timeinfo_by_len.csv`` on the 1,400 questions."""
    import pandas as pd

    questions = pd.read_parquet(shared_path(QUESTIONS_1400))["question"].tolist()
    assert len(questions) == 1400
    with open(shared_path(f"{V1_RUN}/timeinfo_by_len.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Length"] != "All"]
    expected = {int(r["Length"]): int(r["Total"]) for r in rows}
    assert sum(expected.values()) == 1400
    ours = Counter(count_sentences(q) + 1 for q in questions)
    assert dict(ours) == expected
    # the pieces handed to the solver are exactly the counted sentences
    assert all(len(split(q)) == count_sentences(q) for q in questions)


def test_counts_match_each_published_record():
    """Per question: the published run made one call per sentence plus the final call."""
    with open(shared_path(f"{V1_RUN}/all.json")) as f:
        records = json.load(f)
    mismatched = [
        r["question_id"]
        for r in records
        if len(r["usage"]["completion_tokens"]) != count_sentences(r["question"]) + 1
    ]
    assert mismatched == []


# --------------------------------------------------------------------------- clauses, words, chars


def test_clauses_split_after_commas():
    text = "If x is even, then x + 1 is odd, so what is x? Pick one."
    assert split(text, "clause") == ["If x is even, ", "then x + 1 is odd, ", "so what is x? ", "Pick one."]


def test_clauses_do_not_split_thousands_separators():
    text = "A loan of $1,000,000 at 5%, compounded yearly, grows how much?"
    assert split(text, "clause") == [
        "A loan of $1,000,000 at 5%, ",
        "compounded yearly, ",
        "grows how much?",
    ]
    # a comma followed by a space between digits is a list separator, not thousands
    assert split("Sum 1, 2, 3.", "clause") == ["Sum 1, ", "2, ", "3."]


def test_clauses_never_cross_sentences():
    text = "One, two. Three, four."
    assert split(text, "clause") == ["One, ", "two. ", "Three, ", "four."]


def test_words_and_chars():
    text = "Hello  big world.\n"
    assert split_words(text) == ["Hello  ", "big ", "world.\n"]
    assert split(text, "word") == split_words(text)
    assert split_words("   ") == ["   "]
    assert split("abc", "char") == ["a", "b", "c"]
    assert split("", "word") == []
    assert split("", "char") == []


def test_words_leading_whitespace_stays_with_first_word():
    assert split_words(" Hello  big world.\n") == [" Hello  ", "big ", "world.\n"]


def test_unknown_granularity_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown granularity 'paragraph'"):
        split("Some text.", "paragraph")


# --------------------------------------------------------------------------- merge


def test_merge_short_joins_into_next_piece():
    pieces = ["Hi, ", "there, ", "how are you doing today?"]
    assert merge_short(pieces, 5) == ["Hi, there, ", "how are you doing today?"]


def test_merge_short_last_piece_joins_previous():
    assert merge_short(["A long enough piece. ", "Ok."], 5) == ["A long enough piece. Ok."]


def test_merge_short_all_short_and_disabled():
    assert merge_short(["a ", "b ", "c"], 10) == ["a b c"]
    assert merge_short(["a ", "b"], 0) == ["a ", "b"]
    assert merge_short(["a"], 10) == ["a"]
    assert merge_short([], 10) == []


def test_min_length_measured_without_whitespace():
    # "ab " has length 3 but only 2 visible characters
    assert split("ab cd efg", "word", min_length=3) == ["ab cd ", "efg"]


def test_split_with_min_length_on_words():
    text = "I am a cat and I like fish."
    pieces = split(text, "word", min_length=4)
    assert "".join(pieces) == text
    assert all(len(p.strip()) >= 4 for p in pieces)


# --------------------------------------------------------------------------- coverage


_texts = st.lists(
    st.sampled_from(list("abcXYZ019 ,.?!\n$%()'\"-") + ["Dr.", "U.S.", "1,000", "e.g.", " The "]),
    max_size=60,
).map("".join)


@settings(max_examples=150, deadline=None)
@given(text=_texts, granularity=st.sampled_from(GRANULARITIES), min_length=st.integers(0, 12))
def test_pieces_cover_the_text(text, granularity, min_length):
    pieces = split(text, granularity, min_length)
    assert "".join(pieces) == text
    assert all(pieces)


def test_pieces_cover_the_1400_questions():
    import pandas as pd

    questions = pd.read_parquet(shared_path(QUESTIONS_1400))["question"].tolist()
    for q in questions[:300]:
        for granularity in ("sentence", "clause", "word"):
            assert "".join(split(q, granularity, min_length=8)) == q
