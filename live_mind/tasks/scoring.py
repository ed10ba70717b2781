"""Answer extraction and scoring for every task kind (MMLU-Pro's rule untouched).

A record (or a question row) says how it is scored by its ``answer_kind`` field:

* absent -- MMLU-Pro and the original authors' v1 files: the paper's rule
  (``answer.extract_answer``: first match of ``answer is (X)``, X in A-J), unchanged;
  a row with ``answer_rule = "extended"`` (``--answer_rule extended``) also reads the
  formats of ``answer.EXTENDED_PATTERNS`` when the paper's rule finds nothing;
* ``"letter"`` -- a multiple-choice task with its own number of options: the same
  regular expression, but a letter past the last option (E with four options) is a
  miss (no prediction), never a guess;
* ``"free"`` -- no options; the reference is a number or a short text and the reply
  ends with ``The answer is X``.  The *last* such sentence counts (a model that
  corrects itself ends with the corrected one).  Numbers compare by value after
  dropping thousands separators, a currency sign and a trailing ``%`` ("1,000",
  "1000.0" and "$1000" are all 1000, while "10" is not "100" and "1.5" is not "15");
  texts compare after trimming, lower-casing and dropping closing punctuation.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from ..answer import LETTERS, read_answer

FREE_PATTERN = re.compile(r"answer is[:\s]*", re.IGNORECASE)
NUMBER = re.compile(r"[-+]?[$€£]?\s*[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?[$€£]?\s*\.\d+")
WHOLE_NUMBER = re.compile(rf"^(?:{NUMBER.pattern})\s*%?$")
STRIP = " \t\r\n.,;:!\"'`*()[]{}"


def extract_free(text: str | None) -> str | None:
    """The text after the last ``answer is`` of ``text`` (to the end of its line), cleaned
    of surrounding punctuation, markdown emphasis and ``\\boxed{}``; ``None`` if absent."""
    if not text:
        return None
    matches = list(FREE_PATTERN.finditer(text))
    if not matches:
        return None
    answer = text[matches[-1].end():].split("\n")[0].strip()
    answer = re.sub(r"\\boxed\{(.*)\}", r"\1", answer)
    answer = re.sub(r"\.\s.*$", "", answer)  # a second sentence on the same line
    answer = answer.strip(STRIP)
    return answer or None


def number_value(text: str) -> Decimal | None:
    """The value of ``text`` if it is one number ("1,000", "$1000", "1000.0", "5%")."""
    text = text.strip()
    if not WHOLE_NUMBER.match(text):
        return None
    return _decimal(text)


def _decimal(text: str) -> Decimal | None:
    cleaned = re.sub(r"[$€£,%\s]", "", text)
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        return None


def normalise_text(text: str) -> str:
    """Trimmed, lower-cased, inner whitespace collapsed, closing punctuation dropped."""
    return " ".join(text.strip().strip(STRIP).lower().split())


def free_matches(prediction: str | None, reference: str) -> bool:
    """Whether a free-form prediction equals the reference (rules in the module notes).

    A numeric reference matches the first number of the prediction ("42 apples" is 42);
    any other reference is compared as normalised text."""
    if prediction is None:
        return False
    value = number_value(str(reference))
    if value is not None:
        first = NUMBER.search(prediction)
        return first is not None and _decimal(first.group(0)) == value
    return normalise_text(prediction) == normalise_text(str(reference))


def predict(row: dict[str, Any], solution: str | None) -> tuple[str | None, bool]:
    """``(pred, correct)`` of ``solution`` for a question row or a record."""
    kind = row.get("answer_kind")
    if kind == "free":
        prediction = extract_free(solution)
        return prediction, free_matches(prediction, str(row.get("answer", "")))
    prediction, _ = read_answer(solution, row.get("answer_rule"))
    if kind == "letter" and prediction is not None and prediction not in LETTERS[: len(row.get("options") or [])]:
        prediction = None
    return prediction, prediction is not None and prediction == row.get("answer")
