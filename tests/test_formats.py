"""The v2 prompt formats: each layout on a fixed history, and UA-SPI's append-only property."""

from __future__ import annotations

from dataclasses import replace

import pytest

from live_mind.actions import ACTION_DESCRIPTIONS, ACTION_SETS, STRICT, Action
from live_mind.formats import (
    FORMATS,
    MemoryItem,
    UASPIFormat,
    V1Format,
    completed_turns,
    make_format,
)
from live_mind.methods.livemind import LiveMindController
from live_mind.models.base import ChatRequest, Completion
from live_mind.models.scripted import ScriptedModel
from live_mind.prompts import PromptSet, inference_messages
from live_mind.steps import StepResult

P = PromptSet()
CAS = ACTION_SETS["CAS"]
SEGMENTS = ["The sky is blue. ", "It is noon. ", "Light scatters. ", "Why is the sky blue?"]
OPTIONS = "Options are:\n(A): red\n(B): scattering"
BG = Action("background", "optics of air", STRICT)
INF = Action("inference", "short waves scatter more", STRICT)
MEMORY = [MemoryItem(1, BG), MemoryItem(3, INF)]
INFS = "Your inferences so far:\n1. background: optics of air\n2. inference: short waves scatter more"
FIN = P.v2_final
ALL = "The sky is blue. It is noon. Light scatters. Why is the sky blue?"


def system(names=CAS) -> dict:
    lines = "\n".join(f"- {n}: {ACTION_DESCRIPTIONS[n]}" for n in names)
    return {"role": "system", "content": P.v2_system.format(action_list=lines, example=names[0])}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def asst(text: str) -> dict:
    return {"role": "assistant", "content": text}


def step(segments: int, response: str, rule: str | None = STRICT) -> StepResult:
    return StepResult("inference", segments, [], response, Completion(response, 1, 1, 0.0), None, rule)


# --------------------------------------------------------------------------- registry


def test_all_formats_registered_and_v1_kept():
    assert list(FORMATS) == ["v1", "U-PI", "U-PLI", "UA-PIL", "U-SPI", "UA-SPI"]
    for name in FORMATS:
        fmt = make_format(name)
        assert fmt.name == name
    assert make_format("ua-spi").name == "UA-SPI"
    assert isinstance(make_format("v1"), V1Format)
    with pytest.raises(ValueError, match="unknown prompt format 'X-Y'; choose from v1, U-PI"):
        make_format("X-Y")


def test_v1_ignores_the_new_keywords():
    fmt = make_format("v1")
    assert fmt.inference(SEGMENTS, MEMORY, CAS, steps=[step(1, "x")]) == inference_messages(ALL, [BG, INF], CAS, P)


def test_v2_system_is_shared_by_both_stages_and_lists_the_action_set():
    for name in list(FORMATS)[1:]:
        fmt = make_format(name)
        sas = ACTION_SETS["SAS"]
        inf = fmt.inference(SEGMENTS, MEMORY, sas)
        out = fmt.output(SEGMENTS, OPTIONS, MEMORY, allowed=sas)
        assert inf[0] == out[0] == system(sas)
        assert "- background" not in inf[0]["content"] and 'action inference. ...' in inf[0]["content"]
        # without ``allowed`` the output stage assumes CAS
        assert fmt.output(SEGMENTS, OPTIONS, MEMORY)[0] == system()


# --------------------------------------------------------------------------- layouts on a fixed history


def test_u_pi_layout():
    fmt = make_format("U-PI")
    assert fmt.inference(SEGMENTS, MEMORY, CAS) == [system(), user(f"The problem so far:\n{ALL}\n\n{INFS}")]
    assert fmt.output(SEGMENTS, OPTIONS, MEMORY) == [system(), user(f"The problem so far:\n{ALL}\n\n{OPTIONS}\n\n{INFS}\n\n{FIN}")]
    assert fmt.inference(SEGMENTS[:1], [], CAS) == [system(), user("The problem so far:\nThe sky is blue.")]
    assert fmt.output(SEGMENTS, OPTIONS, []) == [system(), user(f"The problem so far:\n{ALL}\n\n{OPTIONS}\n\n{FIN}")]


def test_u_pli_layout():
    fmt = make_format("U-PLI")
    head = "The problem so far:\nThe sky is blue. It is noon. Light scatters."
    new = "Typed since your last inference:\nWhy is the sky blue?"
    assert fmt.inference(SEGMENTS, MEMORY, CAS) == [system(), user(f"{head}\n\n{new}\n\n{INFS}")]
    assert fmt.output(SEGMENTS, OPTIONS, MEMORY) == [system(), user(f"{head}\n\n{new}\n\n{OPTIONS}\n\n{INFS}\n\n{FIN}")]
    # everything already seen by the latest inference: no L block
    assert fmt.output(SEGMENTS[:3], OPTIONS, MEMORY) == [system(), user(f"{head}\n\n{OPTIONS}\n\n{INFS}\n\n{FIN}")]
    # nothing kept: k = n, one P block
    assert fmt.inference(SEGMENTS, [], CAS) == [system(), user(f"The problem so far:\n{ALL}")]


def test_ua_pil_layout():
    fmt = make_format("UA-PIL")
    head = [user("The problem so far:\nThe sky is blue. It is noon. Light scatters."),
            asst("action background. optics of air\naction inference. short waves scatter more")]
    assert fmt.inference(SEGMENTS, MEMORY, CAS) == [system(), *head, user("Typed since your last inference:\nWhy is the sky blue?")]
    assert fmt.output(SEGMENTS, OPTIONS, MEMORY) == [
        system(), *head, user(f"Typed since your last inference:\nWhy is the sky blue?\n\n{OPTIONS}\n\n{FIN}")
    ]
    assert fmt.output(SEGMENTS[:3], OPTIONS, MEMORY) == [system(), *head, user(f"{OPTIONS}\n\n{FIN}")]
    assert fmt.inference(SEGMENTS[:2], [], CAS) == [system(), user("The problem so far:\nThe sky is blue. It is noon.")]
    assert fmt.output(SEGMENTS, OPTIONS, []) == [system(), user(f"The problem so far:\n{ALL}\n\n{OPTIONS}\n\n{FIN}")]


def test_u_spi_layout():
    fmt = make_format("U-SPI")
    body = ("The problem so far:\nThe sky is blue.\n[your background: optics of air]\nIt is noon. Light scatters.\n"
            "[your inference: short waves scatter more]\nWhy is the sky blue?")
    assert fmt.inference(SEGMENTS, MEMORY, CAS) == [system(), user(body)]
    assert fmt.output(SEGMENTS, OPTIONS, MEMORY) == [system(), user(f"{body}\n\n{OPTIONS}\n\n{FIN}")]
    # an action taken on the last visible segment ends the body
    assert fmt.inference(SEGMENTS[:1], MEMORY[:1], CAS)[1]["content"] == "The problem so far:\nThe sky is blue.\n[your background: optics of air]"


def test_ua_spi_layout_from_the_step_log():
    fmt = make_format("UA-SPI")
    steps = [step(1, "action background. optics of air"), step(2, "action wait."),
             step(3, "no idea", "unparsed"), step(4, "", "cancelled")]
    turns = [user("The problem so far:\nThe sky is blue."), asst("action background. optics of air"),
             user("It is noon."), asst("action wait."), user("Light scatters."), asst("no idea")]
    assert [(t.segments, t.reply) for t in completed_turns(MEMORY, steps)] == [
        (1, "action background. optics of air"), (2, "action wait."), (3, "no idea")]
    assert fmt.inference(SEGMENTS, MEMORY, CAS, steps=steps[:3]) == [system(), *turns, user("Why is the sky blue?")]
    # the cancelled call is not a turn; the final user turn has the rest, the options and the cue
    assert fmt.output(SEGMENTS, OPTIONS, MEMORY, steps=steps) == [
        system(), *turns, user(f"Why is the sky blue?\n\n{OPTIONS}\n\n{FIN}")
    ]
    # no completed call: one user turn with the P header
    assert fmt.inference(SEGMENTS[:1], [], CAS, steps=[]) == [system(), user("The problem so far:\nThe sky is blue.")]
    assert fmt.output(SEGMENTS, OPTIONS, [], steps=[step(1, "", "cancelled")]) == [
        system(), user(f"The problem so far:\n{ALL}\n\n{OPTIONS}\n\n{FIN}")
    ]


def test_ua_spi_without_step_log_uses_the_kept_actions():
    fmt = make_format("UA-SPI")
    assert fmt.inference(SEGMENTS, MEMORY, CAS) == [
        system(), user("The problem so far:\nThe sky is blue."), asst("action background. optics of air"),
        user("It is noon. Light scatters."), asst("action inference. short waves scatter more"),
        user("Why is the sky blue?"),
    ]


def test_custom_v2_texts_are_used():
    prompts = replace(P, v2_problem="Q so far: {problem}", v2_note="<{content}>", v2_final="Go.")
    fmt = make_format("U-SPI", prompts)
    out = fmt.output(SEGMENTS[:2], OPTIONS, MEMORY[:1])
    assert out[1]["content"] == f"Q so far: The sky is blue.\n<optics of air>\nIt is noon.\n\n{OPTIONS}\n\nGo."


# --------------------------------------------------------------------------- UA-SPI is append-only


def render(messages: list[dict], prefix: str | None = None) -> str:
    """A ChatML-like template; with ``prefix`` the generation prompt and its priming."""
    text = "".join(f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in messages)
    return text if prefix is None else text + "<|assistant|>\n" + prefix


@pytest.mark.parametrize("priming", [True, False])
@pytest.mark.parametrize("final_answer", ["free", "letter"])
def test_ua_spi_every_call_extends_the_previous_one(priming, final_answer):
    replies = iter(["inference. the sky is blue", "wait.", "nonsense reply", "hypothesize. asks why"])

    def respond(request: ChatRequest) -> str:
        if request.choices:
            return "B"
        if request.messages[-1]["content"].endswith(P.v2_final):
            return "Scattering. The answer is (B)."
        return ("" if priming else "action ") + next(replies)

    model = ScriptedModel(responder=respond)
    ctrl = LiveMindController(model, prompt_format=make_format("UA-SPI"), prime_actions=priming, final_answer=final_answer,
                              parse="lenient")
    for i in range(1, len(SEGMENTS) + 1):
        ctrl.step(SEGMENTS[:i], False)
    ctrl.step(SEGMENTS, True, OPTIONS, 2)
    calls, steps = model.calls, ctrl.steps
    assert [s.parse_rule for s in steps[:4]] == ["strict", "strict", "unparsed", "strict"]
    for k in range(len(calls) - 1):
        before = render(calls[k].messages, calls[k].assistant_prefix) + (steps[k].response[len(calls[k].assistant_prefix):])
        after = render(calls[k + 1].messages, calls[k + 1].assistant_prefix)
        assert after.startswith(before), f"call {k + 1} does not extend call {k}"
        # messages level: the next chat is this chat + this reply + one user turn
        assert calls[k + 1].messages[: len(calls[k].messages)] == calls[k].messages
        assert calls[k + 1].messages[len(calls[k].messages)] == asst(steps[k].response)
        assert len(calls[k + 1].messages) == len(calls[k].messages) + 2
    final = calls[-1].messages
    assert final[-1] == user(f"{OPTIONS}\n\n{FIN}")  # every segment was seen by an inference call


def test_ua_spi_final_after_a_cancelled_call_extends_the_last_completed_call():
    fmt = UASPIFormat()
    done = [step(1, "action inference. blue"), step(2, "action wait.")]
    last = fmt.inference(SEGMENTS[:2], [], CAS, steps=done[:1])
    cancelled = fmt.inference(SEGMENTS[:3], [], CAS, steps=done)
    final = fmt.output(SEGMENTS, OPTIONS, [], steps=[*done, step(3, "", "cancelled")])
    assert final[: len(last)] == last and final[len(last)] == asst("action wait.")
    # the cancelled call's chat and the final chat share everything up to its last user turn's text
    assert render(final).startswith(render(cancelled)[: -len("<|end|>\n")])
