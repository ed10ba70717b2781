"""Answer extraction for MMLU-Pro (paper §4.1, evaluation as in MMLU-Pro).

The prediction is the first match of the paper's regular expression
``(?:answer) is \\(?([ABCDEFGHIJ])\\)?`` in the final response; no match means no
prediction, which counts as wrong.  Kept separate and pure so the analysis scripts
score the original authors' files exactly as their own analysis did.
"""

from __future__ import annotations

import re

ANSWER_PATTERN = re.compile(r"(?:answer) is \(?([ABCDEFGHIJ])\)?")
LETTERS = "ABCDEFGHIJ"


def extract_answer(text: str | None) -> str | None:
    """The predicted option letter in ``text``, or ``None``."""
    if not text:
        return None
    match = ANSWER_PATTERN.search(text)
    return match.group(1) if match else None


def is_correct(text: str | None, answer: str) -> bool:
    """Whether the response's prediction equals the gold letter."""
    prediction = extract_answer(text)
    return prediction is not None and prediction == answer


# ---------------------------------------------------------------- the extended rule (an option)
#
# Instruct models that were never shown the paper's answer sentence often close with
# another format: ``The answer is \(\boxed{C}\)``, ``Answer: C``, ``**(C)**``.  The paper's
# expression reads none of them, so such a reply counts as wrong although it names a
# letter.  ``--answer_rule extended`` reads them too; the paper's rule stays the default
# and is tried first, so every reply it reads gets the same letter under both rules.
# Each record keeps which pattern read its answer (``answer_read_by``).

PAPER_RULE = "paper"
EXTENDED_RULE = "extended"
ANSWER_RULES = (PAPER_RULE, EXTENDED_RULE)

_L = r"\(?\s*([ABCDEFGHIJ])\s*\)?"
EXTENDED_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # \boxed{C}, \boxed{(C)}, \boxed{\text{C}}, \boxed{\textbf{(C)}}
    ("boxed", re.compile(r"\\boxed\{\s*(?:\\text(?:bf)?\{)?" + _L + r"\s*\}?\s*\}")),
    # "answer is: C", "answer is **C**", "answer is option C", "Answer: (C)", "Final answer - C"
    ("answer-label", re.compile(r"(?i:answer)(?:\s+is)?\s*[:\-]?\s*(?i:option\s+|choice\s+)?\**\s*" + _L + r"(?![A-Za-z])")),
    # "**(C)**", "**C**", "**C.**", "**C) text**" opening a bold span
    ("bold", re.compile(r"\*\*\s*" + _L + r"(?:[.):]|\*\*)")),
)
"""Name and expression of each extra answer format, tried after the paper's."""


def read_answer(text: str | None, rule: str | None = PAPER_RULE) -> tuple[str | None, str | None]:
    """``(letter, which rule read it)`` of a final response: the paper's expression first
    (``"paper"``); under the extended rule, if it finds nothing, the last match of the
    extended formats (a model that corrects itself ends with the corrected letter)."""
    letter = extract_answer(text)
    if letter is not None:
        return letter, PAPER_RULE
    if rule in (None, PAPER_RULE) or not text:
        return None, None
    best: tuple[int, str, str] | None = None
    for name, pattern in EXTENDED_PATTERNS:
        for match in pattern.finditer(text):
            if best is None or match.start() > best[0]:
                best = (match.start(), match.group(1), name)
    return (best[1], best[2]) if best else (None, None)
