"""The LiveMind and CoT controllers with a scripted model (paper §3, Algorithm 1)."""

from __future__ import annotations

from typing import Sequence

import pytest

from live_mind.actions import ACTION_SETS, LENIENT, STRICT, Action
from live_mind.answer import extract_answer
from live_mind.formats import MemoryItem
from live_mind.methods.base import LETTER_PRIME
from live_mind.methods.cot import CoTController
from live_mind.methods.livemind import ACTION_PRIME, LiveMindController
from live_mind.models.base import ChatRequest, Completion
from live_mind.models.scripted import ScriptedModel
from live_mind.prompts import PromptSet, cot_messages, inference_messages, output_messages

SEGMENTS = ["The sky is blue. ", "It is noon. ", "Why is it blue?"]
OPTIONS = "Options are:\n(A): red\n(B): scattering"
P = PromptSet()


def is_inference(request: ChatRequest) -> bool:
    return request.messages[0]["content"].startswith("You are reading a problem while")


def queue_model(inference_replies: Sequence[str], final: str = "So. The answer is (B).", name: str = "scripted") -> ScriptedModel:
    """Answers inference calls from a queue and every other call with ``final``."""
    replies = iter(inference_replies)
    return ScriptedModel(name=name, responder=lambda r: next(replies) if is_inference(r) else final)


def run(controller: LiveMindController, segments: Sequence[str] = SEGMENTS, options_count: int = 2):
    """Feed the segments one by one, then the end of input; return the final step."""
    for i in range(1, len(segments) + 1):
        controller.step(segments[:i], False)
    return controller.step(segments, True, OPTIONS, options_count)


# --------------------------------------------------------------------------- CAS / SAS


def test_cas_keeps_non_wait_actions_and_shows_them_later():
    model = queue_model(["action background. light scatters", "action wait.", "Inference: noon means a high sun"])
    ctrl = LiveMindController(model, action_set_name="CAS", parse="lenient")
    final = run(ctrl)

    assert [(s.kind, s.segments, s.action_name, s.parse_rule) for s in ctrl.steps] == [
        ("inference", 1, "background", STRICT),
        ("inference", 2, "wait", STRICT),
        ("inference", 3, "inference", LENIENT),
        ("final", 3, None, None),
    ]
    assert ctrl.memory == [
        MemoryItem(1, Action("background", "light scatters", STRICT)),
        MemoryItem(3, Action("inference", "noon means a high sun", LENIENT)),
    ]
    # each inference call sees the segments so far and the kept actions before it
    assert model.calls[0].messages == inference_messages("The sky is blue.", [], ACTION_SETS["CAS"], P)
    assert model.calls[2].messages == inference_messages(
        "".join(SEGMENTS), [Action("background", "light scatters", STRICT)], ACTION_SETS["CAS"], P
    )
    assert "wait" not in model.calls[2].messages[1]["content"].split("What you have done so far:")[1]
    # the output stage gets the numbered kept contents, the whole question and the options
    assert model.calls[3].messages == output_messages("".join(SEGMENTS), OPTIONS, [m.action for m in ctrl.memory], P)
    assert "1. light scatters\n2. noon means a high sun" in model.calls[3].messages[1]["content"]
    assert final.response == "So. The answer is (B)."
    assert extract_answer(final.response) == "B"


def test_sas_rejects_background_and_prompts_only_its_actions():
    model = queue_model(["action background. light scatters", "action inference. it is day", "action wait."])
    ctrl = LiveMindController(model, action_set_name="SAS", parse="lenient")
    run(ctrl)
    assert [s.action_name for s in ctrl.steps] == ["unparsed", "inference", "wait", None]
    assert ctrl.steps[0].action is None and ctrl.steps[0].parse_rule == "unparsed"
    assert ctrl.memory == [MemoryItem(2, Action("inference", "it is day", STRICT))]
    system = model.calls[0].messages[0]["content"]
    assert "- inference:" in system and "- wait:" in system and "background" not in system


def test_unparsed_responses_are_counted_not_kept():
    model = queue_model(["Let me think about the sky.", "The answer is (A).", "action inference. noon"])
    ctrl = LiveMindController(model)
    run(ctrl)
    rules = [s.parse_rule for s in ctrl.steps if s.kind == "inference"]
    assert rules == ["unparsed", "unparsed", STRICT]
    assert [s.response for s in ctrl.steps[:2]] == ["Let me think about the sky.", "The answer is (A)."]
    assert [m.action.content for m in ctrl.memory] == ["noon"]
    # the unparsed replies never reach a later prompt
    assert "Let me think" not in model.calls[2].messages[1]["content"]


def test_all_waits_fall_back_to_cot():
    model = queue_model(["action wait."] * 3)
    ctrl = LiveMindController(model)
    run(ctrl)
    assert ctrl.memory == []
    assert model.calls[-1].messages == cot_messages("".join(SEGMENTS), OPTIONS, P)


def test_collaborative_inference_output_model_gets_only_the_final_call():
    small = queue_model(["action inference. sunlight", "action wait.", "action hypothesize. asks why"], name="small")
    large = ScriptedModel(name="large", default="Scattering. The answer is (B).")
    ctrl = LiveMindController(small, output_model=large)
    final = run(ctrl)
    assert len(small.calls) == 3 and all(is_inference(r) for r in small.calls)
    assert len(large.calls) == 1 and not is_inference(large.calls[0])
    assert large.calls[0].messages == output_messages(
        "".join(SEGMENTS), OPTIONS, [Action("inference", "sunlight", STRICT), Action("hypothesize", "asks why", STRICT)], P
    )
    assert final.response == "Scattering. The answer is (B)."
    assert ctrl.answer_model is large and ctrl.model_for(False) is small and ctrl.model_for(True) is large


def test_without_output_model_the_inference_model_answers():
    model = queue_model(["action wait."] * 3)
    ctrl = LiveMindController(model)
    assert ctrl.answer_model is model and ctrl.model_for(True) is model


# --------------------------------------------------------------------------- priming and constrained answer


def test_priming_prefix_sent_and_prepended():
    model = queue_model(["inference. the sun is high", "wait.", "Background: optics"])
    ctrl = LiveMindController(model, prime_actions=True, parse="lenient")
    run(ctrl)
    assert [r.assistant_prefix for r in model.calls] == [ACTION_PRIME] * 3 + [""]
    assert ACTION_PRIME == "action "
    assert [s.response for s in ctrl.steps[:3]] == ["action inference. the sun is high", "action wait.", "action Background: optics"]
    assert [(s.action_name, s.parse_rule) for s in ctrl.steps[:3]] == [
        ("inference", STRICT),
        ("wait", STRICT),
        ("background", LENIENT),
    ]


def test_constrained_actions_send_lead_choices_for_the_action_set():
    model = queue_model([" inference. the sun is high", " wait.", " wait."])
    ctrl = LiveMindController(model, action_set_name="SAS", prime_actions=True, constrain_actions=True)
    run(ctrl)
    inference_calls = model.calls[:3]
    assert [r.assistant_prefix for r in inference_calls] == ["action"] * 3
    assert all(r.lead_choices == [" inference.", " wait."] for r in inference_calls)
    assert model.calls[3].lead_choices is None  # the final call is free
    assert ctrl.steps[0].response == "action inference. the sun is high"
    assert (ctrl.steps[0].action_name, ctrl.steps[0].parse_rule) == ("inference", STRICT)


def test_constraint_needs_priming():
    model = queue_model(["action wait.", "action wait.", "action wait."])
    ctrl = LiveMindController(model, constrain_actions=True)
    run(ctrl)
    assert all(r.lead_choices is None and r.assistant_prefix == "" for r in model.calls)


def test_final_answer_letter_sends_choices():
    model = ScriptedModel(responder=lambda r: "action wait." if is_inference(r) else "C")
    ctrl = LiveMindController(model, final_answer="letter")
    final = run(ctrl, options_count=4)
    request = model.calls[-1]
    assert request.choices == ["A", "B", "C", "D"]
    assert request.assistant_prefix == LETTER_PRIME == "The answer is ("
    assert request.max_new_tokens == 1
    assert final.response == "The answer is (C)"
    assert extract_answer(final.response) == "C"
    # inference calls are not constrained
    assert all(r.choices is None for r in model.calls[:-1])


def test_token_limits():
    model = queue_model(["action wait."] * 3)
    ctrl = LiveMindController(model, max_new_tokens=64, final_max_new_tokens=300)
    run(ctrl)
    assert [r.max_new_tokens for r in model.calls] == [64, 64, 64, 300]
    model = queue_model(["action wait."] * 3)
    run(LiveMindController(model, max_new_tokens=64))
    assert model.calls[-1].max_new_tokens == 64


# --------------------------------------------------------------------------- state handling


def test_reset_forgets_the_previous_question_and_sets_the_cache_key():
    model = queue_model(["action inference. a"] * 6)
    ctrl = LiveMindController(model)
    run(ctrl)
    assert ctrl.memory and ctrl.steps
    ctrl.reset(cache_key="q42")
    assert ctrl.memory == [] and ctrl.steps == [] and ctrl.cache_key == "q42"
    run(ctrl)
    assert {r.cache_key for r in model.calls[4:]} == {"q42"}
    assert "What you have done so far" not in model.calls[4].messages[1]["content"]


def test_discard_records_a_cancelled_step_without_keeping_it():
    model = queue_model(["action inference. a"])
    ctrl = LiveMindController(model)
    request = ctrl.request(SEGMENTS[:1], False)
    step = ctrl.discard(request, Completion("action inference. a", 10, 3, 2.0), 1)
    assert step.action_name == "cancelled" and step.response == "" and ctrl.memory == []
    assert ctrl.steps == [step]


def test_request_accept_split_equals_step():
    model = queue_model(["action inference. a"])
    ctrl = LiveMindController(model)
    request = ctrl.request(SEGMENTS[:2], False)
    step = ctrl.accept(request, Completion("action inference. a", 10, 3, 1.0), 2, False)
    assert step.segments == 2 and ctrl.memory == [MemoryItem(2, Action("inference", "a", STRICT))]
    assert model.calls == []  # request/accept alone never call the model


@pytest.mark.parametrize("kwargs, message", [({"final_answer": "word"}, "final_answer must be one of"), ({"action_set_name": "XAS"}, "unknown action set")])
def test_bad_controller_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LiveMindController(ScriptedModel(), **kwargs)


# --------------------------------------------------------------------------- CoT baseline


def test_cot_controller_one_call_on_the_complete_question():
    model = ScriptedModel(default="Rayleigh. The answer is (B).")
    ctrl = CoTController(model)
    ctrl.reset(cache_key="7")
    step = ctrl.step(SEGMENTS, True, OPTIONS, 2)
    assert len(model.calls) == 1
    assert model.calls[0].messages == cot_messages("".join(SEGMENTS), OPTIONS, P)
    assert model.calls[0].cache_key == "7" and model.calls[0].assistant_prefix == ""
    assert (step.kind, step.segments, step.action_name, step.response) == ("final", 3, None, "Rayleigh. The answer is (B).")
    assert ctrl.model_for(False) is model and ctrl.memory == []


def test_cot_controller_letter_mode():
    model = ScriptedModel(default="B")
    step = CoTController(model, final_answer="letter").step(SEGMENTS, True, OPTIONS, 2)
    assert model.calls[0].choices == ["A", "B"]
    assert step.response == "The answer is (B)"


def test_cot_controller_rejects_unknown_final_answer():
    with pytest.raises(ValueError, match="final_answer must be one of"):
        CoTController(ScriptedModel(), final_answer="word")
