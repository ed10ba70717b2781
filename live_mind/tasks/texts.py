"""Prompt texts of the tasks other than MMLU-Pro (named constants, like ``prompts.py``).

Written for this toolkit.  ``prompts.PromptSet`` carries each under its field name, so
``--prompts FILE`` can replace it; a task swaps them into the fields the prompt builders
read (``tasks.base.Task.prompts``).  Nothing here imports the rest of the package.

* MMLU (the v2 paper's second benchmark): four options, so the answer-format line names
  the letters A to D; the rest is the MMLU-Pro wording.
* Free-form answers: no options block; the reply ends with ``The answer is X`` where X
  is the bare answer (a number or a few words), scored by ``tasks.scoring``.
"""

from __future__ import annotations

COT_INTRO = "Solve the following multiple-choice problem step by step. "

OUTPUT_INTRO = (
    "You have been reading a problem while it was typed and wrote some inferences along the way. "
    "Now the problem is complete. If your earlier inferences already give the answer, answer directly; "
    "otherwise build on them and solve the problem step by step. "
)

V2_INTRO = (
    "You are reading a problem while the user is still typing it, so you only see its beginning. "
    "Use the waiting time well: choose exactly one of these actions.\n"
    "{action_list}\n"
    "Reply in the form \"action NAME. CONTENT\", for example \"action {example}. ...\". "
    "The wait action has no content: reply \"action wait.\" alone. Keep the content short and do not "
    "answer a question that has not been asked yet.\n"
    "When the user says the problem is complete, stop choosing actions and solve it: if your earlier "
    "inferences already give the answer, answer directly; otherwise build on them and reason step by step. "
)

MMLU_ANSWER_FORMAT = 'End your response with "The answer is (X)", where X is one of the letters A, B, C or D.'

MMLU_COT_SYSTEM = COT_INTRO + MMLU_ANSWER_FORMAT
MMLU_OUTPUT_SYSTEM = OUTPUT_INTRO + MMLU_ANSWER_FORMAT
MMLU_V2_SYSTEM = V2_INTRO + MMLU_ANSWER_FORMAT

FREE_ANSWER_FORMAT = (
    'Finish your response with the sentence "The answer is X", where X is the final answer alone: '
    "a number or a few words, with no option letter."
)

FREE_COT_SYSTEM = "Solve the following problem step by step. " + FREE_ANSWER_FORMAT
FREE_COT_USER = "{problem}"
FREE_OUTPUT_SYSTEM = OUTPUT_INTRO + FREE_ANSWER_FORMAT
FREE_OUTPUT_USER = "Your earlier inferences:\n{history}\n\nThe complete problem:\n{problem}"
FREE_V2_SYSTEM = V2_INTRO + FREE_ANSWER_FORMAT
FREE_V2_FINAL = 'The problem is complete. Do not choose an action now: solve it and finish with "The answer is X".'

#: PromptSet field -> the field a task puts in its place.
MMLU_SWAP = {"cot_system": "mmlu_cot_system", "output_system": "mmlu_output_system", "v2_system": "mmlu_v2_system"}
FREE_SWAP = {
    "cot_system": "free_cot_system", "cot_user": "free_cot_user", "output_system": "free_output_system",
    "output_user": "free_output_user", "v2_system": "free_v2_system", "v2_final": "free_v2_final",
}

#: The fields above and the placeholders each must / may contain (checked by ``prompts.load_prompt_set``).
REQUIRED = {
    "mmlu_cot_system": set(), "mmlu_output_system": set(), "mmlu_v2_system": {"action_list"},
    "free_cot_system": set(), "free_cot_user": {"problem"}, "free_output_system": set(),
    "free_output_user": {"history", "problem"}, "free_v2_system": {"action_list"}, "free_v2_final": set(),
}
ALLOWED = {**REQUIRED, "mmlu_v2_system": {"action_list", "example"}, "free_v2_system": {"action_list", "example"}}
