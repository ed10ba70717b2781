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
