"""The paper's parse rule per solver (``--parse v1``) next to the toolkit's lenient rule.

v1: only the strict pattern, on the raw reply; the real-time solver keeps every matched
non-``wait`` reply whatever its name (under SAS as under CAS), the batched solver only
background / inference / hypothesize.  Unmatched replies are dropped.  Every step still
records ``strict``, ``lenient`` or ``unparsed``.
"""

from __future__ import annotations

import pytest

from live_mind.actions import parse_reply
from live_mind.batch import solve_batch
from live_mind.methods.livemind import LiveMindController
from live_mind.models.base import Completion
from live_mind.models.scripted import ScriptedModel

# reply -> (kept name or None, recorded rule) for: v1 real-time, v1 batched, lenient -- all under SAS
TABLE = [
    ("action inference. F = ma", ("inference", "strict"), ("inference", "strict"), ("inference", "strict")),
    ("action background. Newton's laws", ("background", "strict"), ("background", "strict"), (None, "unparsed")),
    ("action hypothesize. It asks for a", ("hypothesize", "strict"), ("hypothesize", "strict"), (None, "unparsed")),
    ("action summarize. so far: a ball", ("summarize", "strict"), (None, "unparsed"), (None, "unparsed")),
    ("action wait.", (None, "strict"), (None, "strict"), (None, "strict")),
    ("action wait", ("wai", "strict"), (None, "unparsed"), (None, "lenient")),  # `.` ate the t
    ("action inference F = ma", ("inference", "strict"), ("inference", "strict"), ("inference", "strict")),  # `.` = space
    ("**Inference:** F = ma", (None, "unparsed"), (None, "unparsed"), ("inference", "lenient")),
    ("Action inference. F = ma", (None, "unparsed"), (None, "unparsed"), ("inference", "lenient")),
    (" action inference. F = ma", (None, "unparsed"), (None, "unparsed"), ("inference", "lenient")),
    ("I think the answer is 4.", (None, "unparsed"), (None, "unparsed"), (None, "unparsed")),
]


def _kept(controller: LiveMindController, reply: str) -> tuple[str | None, str]:
    request = controller.request(["A ball falls. "], False)
    step = controller.accept(request, Completion(reply, 10, 5, 0.1), 1, False)
    kept = controller.memory[-1].action.name if controller.memory else None
    return kept, step.parse_rule


@pytest.mark.parametrize("reply,realtime,batched,lenient", TABLE)
def test_parse_table_under_sas(reply, realtime, batched, lenient):
    for (parse, is_batched), expected in (((("v1", False)), realtime), (("v1", True), batched), (("lenient", False), lenient)):
        controller = LiveMindController(ScriptedModel(), action_set_name="SAS", parse=parse, batched=is_batched)
        assert _kept(controller, reply) == expected, (parse, is_batched)


def test_v1_keeps_the_reply_as_written_and_cas_matches_sas():
    action = parse_reply("action inference.\n\nF = ma ", ("inference", "wait"), "v1")
    assert (action.name, action.content, action.raw) == ("inference", "F = ma", "action inference.\n\nF = ma ")
    for reply, realtime, batched, _ in TABLE:
        cas = LiveMindController(ScriptedModel(), parse="v1")
        assert _kept(cas, reply) == realtime
        cas_batched = LiveMindController(ScriptedModel(), parse="v1", batched=True)
        assert _kept(cas_batched, reply) == batched


def test_unknown_parse_rule():
    with pytest.raises(ValueError, match="parse"):
        LiveMindController(ScriptedModel(), parse="loose")
    with pytest.raises(ValueError, match="unknown parse rule"):
        parse_reply("action wait.", ("wait",), "loose")


def test_batched_solver_end_to_end_under_v1():
    replies = iter(["action background. Newton", "action summarize. a ball", "action wait"])
    row = {"question_id": 1, "question": "A ball falls. It starts at rest. How far does it fall?", "options": ["1", "2"],
           "answer": "A", "answer_index": 0, "cot_content": "", "category": "physics", "src": "t"}
    model = ScriptedModel(responder=lambda r: next(replies) if r.messages[0]["content"].startswith("You are reading")
                          else "The answer is (A).")
    [record] = solve_batch(lambda: LiveMindController(model, action_set_name="SAS", parse="v1", batched=True), [row])
    assert record["action"] == ["action background. Newton"]
    assert [s["parse_rule"] for s in record["steps"] if s["kind"] == "inference"] == ["strict", "unparsed", "unparsed"]
