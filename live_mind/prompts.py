"""Prompt texts and the v1 prompt builders (paper §3.2-3.3, Appendix prompts; v1 layout).

Every text the models see is a named constant below, written for this toolkit.  A
``PromptSet`` bundles them; ``load_prompt_set`` replaces any of them from a TOML or JSON
file (``--prompts FILE``) so a user can run other wording -- for instance the authors'
exact prompts -- without touching code.  Placeholders use ``str.format`` fields and are
checked when the file is loaded, before any model is.

v1 message layout:

* inference stage: system = action set + response format; user = the incomplete
  problem so far, then the numbered earlier (non-wait) actions;
* output stage: system = use the earlier inferences, answer directly when they already
  settle it, else reason step by step from them; + the answer-format instruction;
  user = numbered earlier inferences, the complete problem, the options;
* no earlier action: the plain chain-of-thought prompt (also the baseline).

How the kept actions are listed is part of the prompt set too: ``inference_history_item``
(inference stage) and ``history_item`` (output stage) render one kept action from
``{index}`` (1, 2, ...), ``{name}``, ``{content}`` and ``{reply}`` (the reply as the model
wrote it, ``action NAME. content``), and ``history_joiner`` joins the items.  The
defaults give ``1. NAME: content`` to the inference stage and ``1. content`` to the
output stage, one per line; ``examples/prompts_v1_layout.toml`` shows each reply as
written, numbered ``(1) ... (2) ...`` and joined by spaces, to both stages -- the layout
of the paper's v1 prompts.

The ``V2_*`` texts serve the v2 layouts of ``formats.py``.  ``V2_SYSTEM``
covers *both* stages, so every call of one question -- inference and final -- starts
with the same system message and a prefix-reusing backend never re-reads it.
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Sequence

from .actions import ACTION_DESCRIPTIONS, Action
from .models.base import Message
from .tasks import texts as task_texts

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ANSWER_FORMAT = (
    'Finish your response with the sentence "The answer is (X)", where X is the letter of the option you choose.'
)

INFERENCE_SYSTEM = (
    "You are reading a problem while the user is still typing it, so you only see its beginning. "
    "Use the waiting time well: choose exactly one of these actions.\n"
    "{action_list}\n"
    "Reply with one line: the word action, the name of the action and a period, then your content, "
    "for example: action {example}. The mass is 2 kg, so its weight is about 20 N.\n"
    "If the text so far gives you nothing to work on, reply: action wait.\n"
    "Keep the content short and do not answer a question that has not been asked yet."
)

ACTION_LINE = "- {name}: {description}"

INFERENCE_USER = "The problem so far (incomplete):\n{problem}\n{history}"

INFERENCE_HISTORY = "\nWhat you have done so far:\n{items}\n"

OUTPUT_SYSTEM = task_texts.OUTPUT_INTRO + ANSWER_FORMAT

OUTPUT_USER = "Your earlier inferences:\n{history}\n\nThe complete problem:\n{problem}\n\n{options}"

COT_SYSTEM = task_texts.COT_INTRO + ANSWER_FORMAT

COT_USER = "{problem}\n\n{options}"

HISTORY_ITEM = "{index}. {content}"

INFERENCE_HISTORY_ITEM = "{index}. {name}: {content}"

HISTORY_JOINER = "\n"

# --- v2 layouts (formats.py) ----------------------------------------------------

V2_SYSTEM = task_texts.V2_INTRO + ANSWER_FORMAT

V2_PROBLEM = "The problem so far:\n{problem}"

V2_NEW = "Typed since your last inference:\n{text}"

V2_INFERENCES = "Your inferences so far:\n{items}"

V2_NOTE = "[your {name}: {content}]"

V2_FINAL = 'The problem is complete. Do not choose an action now: solve it and finish with "The answer is (X)".'

#: Fields each template must contain (checked on load).
REQUIRED_FIELDS: dict[str, set[str]] = {
    "inference_system": {"action_list"},
    "action_line": {"name", "description"},
    "inference_user": {"problem", "history"},
    "inference_history": {"items"},
    "output_system": set(),
    "output_user": {"history", "problem", "options"},
    "cot_system": set(),
    "cot_user": {"problem", "options"},
    "history_item": {"index"},
    "inference_history_item": {"index"},
    "history_joiner": set(),
    "v2_system": {"action_list"},
    "v2_problem": {"problem"},
    "v2_new": {"text"},
    "v2_inferences": {"items"},
    "v2_note": {"content"},
    "v2_final": set(),
    **task_texts.REQUIRED,
}
ALLOWED_FIELDS: dict[str, set[str]] = {
    **REQUIRED_FIELDS,
    "inference_system": {"action_list", "example"},
    "v2_system": {"action_list", "example"},
    "v2_note": {"name", "content"},
    "history_item": {"index", "name", "content", "reply"},
    "inference_history_item": {"index", "name", "content", "reply"},
    **task_texts.ALLOWED,
}
#: Item templates must show the action: at least one of these fields.
ITEM_FIELDS = {"content", "reply"}


class PromptError(ValueError):
    """A prompts file that cannot be used (one-line message)."""


@dataclass(frozen=True)
class PromptSet:
    """All prompt texts of one run."""

    inference_system: str = INFERENCE_SYSTEM
    action_line: str = ACTION_LINE
    inference_user: str = INFERENCE_USER
    inference_history: str = INFERENCE_HISTORY
    output_system: str = OUTPUT_SYSTEM
    output_user: str = OUTPUT_USER
    cot_system: str = COT_SYSTEM
    cot_user: str = COT_USER
    history_item: str = HISTORY_ITEM
    inference_history_item: str = INFERENCE_HISTORY_ITEM
    history_joiner: str = HISTORY_JOINER
    v2_system: str = V2_SYSTEM
    v2_problem: str = V2_PROBLEM
    v2_new: str = V2_NEW
    v2_inferences: str = V2_INFERENCES
    v2_note: str = V2_NOTE
    v2_final: str = V2_FINAL
    # Texts a task swaps in (tasks/texts.py); replaceable here, left out of ``as_dict``,
    # which holds what the run's builders read once the task has swapped them in.
    mmlu_cot_system: str = task_texts.MMLU_COT_SYSTEM
    mmlu_output_system: str = task_texts.MMLU_OUTPUT_SYSTEM
    mmlu_v2_system: str = task_texts.MMLU_V2_SYSTEM
    free_cot_system: str = task_texts.FREE_COT_SYSTEM
    free_cot_user: str = task_texts.FREE_COT_USER
    free_output_system: str = task_texts.FREE_OUTPUT_SYSTEM
    free_output_user: str = task_texts.FREE_OUTPUT_USER
    free_v2_system: str = task_texts.FREE_V2_SYSTEM
    free_v2_final: str = task_texts.FREE_V2_FINAL

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if k not in task_texts.REQUIRED}


def _template_fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def load_prompt_set(path: str | Path | None) -> PromptSet:
    """Defaults, with the keys of a TOML/JSON file replacing them; validates placeholders."""
    if path is None:
        return PromptSet()
    path = Path(path)
    if not path.is_file():
        raise PromptError(f"prompts file not found: {path}")
    try:
        raw = path.read_text(encoding="utf-8")
        data = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise PromptError(f"cannot parse prompts file {path}: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise PromptError(f"prompts file {path}: the top level must be a table/object of prompt texts")
    known = {f.name for f in fields(PromptSet)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PromptError(f"prompts file {path}: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for key, text in data.items():
        if not isinstance(text, str):
            raise PromptError(f"prompts file {path}: {key} must be a string")
        try:
            present = _template_fields(text)
        except ValueError as exc:
            raise PromptError(f"prompts file {path}: {key} is not a valid template ({exc})") from None
        missing = REQUIRED_FIELDS[key] - present
        extra = present - ALLOWED_FIELDS[key]
        if key in ("history_item", "inference_history_item") and not present & ITEM_FIELDS:
            raise PromptError(f"prompts file {path}: {key} lacks placeholder {{content}} or {{reply}}")
        if missing:
            raise PromptError(f"prompts file {path}: {key} lacks placeholder(s) {', '.join('{' + m + '}' for m in sorted(missing))}")
        if extra:
            raise PromptError(f"prompts file {path}: {key} has unknown placeholder(s) {', '.join('{' + m + '}' for m in sorted(extra))}")
    return replace(PromptSet(), **data)


def numbered(items: Sequence[str], prompts: PromptSet) -> str:
    """Plain text items through ``history_item`` (as ``{content}`` and ``{reply}``)."""
    return prompts.history_joiner.join(
        prompts.history_item.format(index=i, name="", content=text, reply=text) for i, text in enumerate(items, 1)
    )


def action_history_text(actions: Sequence[Action]) -> list[str]:
    """Earlier actions as ``NAME: content`` (the v2 formats' inference list)."""
    return [f"{a.name}: {a.content}" for a in actions if not a.is_wait]


def render_history(actions: Sequence[Action], template: str, prompts: PromptSet) -> str:
    """The kept (non-wait) actions, numbered from 1 through ``template`` and joined with
    ``history_joiner``; ``{reply}`` is the reply as written (stripped), or its canonical
    form when the action was built without one."""
    kept = [a for a in actions if not a.is_wait]
    return prompts.history_joiner.join(
        template.format(index=i, name=a.name, content=a.content, reply=(a.raw or a.render()).strip())
        for i, a in enumerate(kept, 1)
    )


def inference_messages(problem: str, actions: Sequence[Action], allowed: Sequence[str], prompts: PromptSet) -> list[Message]:
    """v1 inference-stage chat for the problem seen so far."""
    action_list = "\n".join(prompts.action_line.format(name=n, description=ACTION_DESCRIPTIONS[n]) for n in allowed)
    example = next((n for n in allowed if n != "wait"), allowed[0])
    items = render_history(actions, prompts.inference_history_item, prompts)
    history = prompts.inference_history.format(items=items) if items else ""
    return [
        {"role": "system", "content": prompts.inference_system.format(action_list=action_list, example=example)},
        {"role": "user", "content": prompts.inference_user.format(problem=problem.strip(), history=history).rstrip()},
    ]


def output_messages(problem: str, options: str, actions: Sequence[Action], prompts: PromptSet) -> list[Message]:
    """v1 output-stage chat; falls back to plain CoT when no action was kept."""
    if not any(not a.is_wait for a in actions):
        return cot_messages(problem, options, prompts)
    history = render_history(actions, prompts.history_item, prompts)
    return [
        {"role": "system", "content": prompts.output_system},
        {"role": "user", "content": prompts.output_user.format(history=history, problem=problem.strip(), options=options)},
    ]


def cot_messages(problem: str, options: str, prompts: PromptSet) -> list[Message]:
    """The chain-of-thought baseline prompt on the complete problem."""
    return [
        {"role": "system", "content": prompts.cot_system},
        {"role": "user", "content": prompts.cot_user.format(problem=problem.strip(), options=options)},
    ]
