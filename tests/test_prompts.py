"""Prompt building and prompt files (paper §3.2-3.3 v1 layout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from live_mind.actions import ACTION_DESCRIPTIONS, ACTION_SETS, LENIENT, STRICT, Action, parse_reply
from live_mind.formats import MemoryItem, V1Format, make_format
from live_mind.prompts import (
    ANSWER_FORMAT,
    COT_SYSTEM,
    INFERENCE_SYSTEM,
    OUTPUT_SYSTEM,
    PromptError,
    PromptSet,
    action_history_text,
    cot_messages,
    inference_messages,
    load_prompt_set,
    numbered,
    output_messages,
)

P = PromptSet()
OPTIONS = "Options are:\n(A): red\n(B): blue"
ACTIONS = [
    Action("background", "light scatters", STRICT),
    Action("wait", "", STRICT),
    Action("inference", "short wavelengths scatter more", LENIENT),
]


# --------------------------------------------------------------------------- inference stage


def test_inference_messages_layout_cas():
    messages = inference_messages("  The sky is blue. Why? ", ACTIONS, ACTION_SETS["CAS"], P)
    assert [m["role"] for m in messages] == ["system", "user"]
    system, user = messages[0]["content"], messages[1]["content"]
    for name in ACTION_SETS["CAS"]:
        assert f"- {name}: {ACTION_DESCRIPTIONS[name]}" in system
    assert 'action background. The mass' in system  # example = first non-wait action
    assert user == (
        "The problem so far (incomplete):\n"
        "The sky is blue. Why?\n"
        "\n"
        "What you have done so far:\n"
        "1. background: light scatters\n"
        "2. inference: short wavelengths scatter more"
    )


def test_inference_messages_sas_lists_only_its_actions():
    system = inference_messages("The sky is blue.", [], ACTION_SETS["SAS"], P)[0]["content"]
    assert "- inference:" in system and "- wait:" in system
    assert "- background:" not in system and "- hypothesize:" not in system
    assert 'action inference. The mass' in system


def test_inference_messages_without_history_has_no_history_block():
    user = inference_messages("The sky is blue.", [Action("wait", "", STRICT)], ACTION_SETS["CAS"], P)[1]["content"]
    assert user == "The problem so far (incomplete):\nThe sky is blue."


def test_action_history_text_skips_waits():
    assert action_history_text(ACTIONS) == ["background: light scatters", "inference: short wavelengths scatter more"]


def test_numbered_history():
    assert numbered(["a", "b", "c"], P) == "1. a\n2. b\n3. c"
    assert numbered([], P) == ""
    assert numbered(["x"], PromptSet(history_item="[{index}] {content}")) == "[1] x"


# --------------------------------------------------------------------------- output stage / CoT


def test_output_messages_layout():
    messages = output_messages("The sky is blue. Why is it blue? ", OPTIONS, ACTIONS, P)
    assert messages == [
        {"role": "system", "content": OUTPUT_SYSTEM},
        {
            "role": "user",
            "content": "Your earlier inferences:\n1. light scatters\n2. short wavelengths scatter more\n\n"
            "The complete problem:\nThe sky is blue. Why is it blue?\n\n" + OPTIONS,
        },
    ]
    assert messages[0]["content"].endswith(ANSWER_FORMAT)
    assert "The answer is (X)" in ANSWER_FORMAT


def test_cot_messages_layout():
    assert cot_messages(" Why is the sky blue? ", OPTIONS, P) == [
        {"role": "system", "content": COT_SYSTEM},
        {"role": "user", "content": "Why is the sky blue?\n\n" + OPTIONS},
    ]
    assert COT_SYSTEM.endswith(ANSWER_FORMAT)


@pytest.mark.parametrize("actions", [[], [Action("wait", "", STRICT)], [Action("wait", "", LENIENT)] * 3])
def test_output_falls_back_to_cot_without_kept_actions(actions):
    assert output_messages("Why?", OPTIONS, actions, P) == cot_messages("Why?", OPTIONS, P)


def test_v1_format_joins_segments_and_uses_memory():
    fmt = make_format("v1")
    assert isinstance(fmt, V1Format) and fmt.name == "v1"
    memory = [MemoryItem(1, ACTIONS[0])]
    segments = ["The sky is blue. ", "Why is it blue?"]
    assert fmt.inference(segments, memory, ACTION_SETS["CAS"]) == inference_messages(
        "The sky is blue. Why is it blue?", [ACTIONS[0]], ACTION_SETS["CAS"], P
    )
    assert fmt.output(segments, OPTIONS, memory) == output_messages(
        "The sky is blue. Why is it blue?", OPTIONS, [ACTIONS[0]], P
    )
    with pytest.raises(ValueError, match="unknown prompt format 'v9'"):
        make_format("v9")


# --------------------------------------------------------------------------- prompt files


def test_load_prompt_set_none_is_defaults():
    assert load_prompt_set(None) == PromptSet()
    assert PromptSet().inference_system == INFERENCE_SYSTEM


def test_load_prompt_set_from_toml_replaces_texts(tmp_path):
    path = tmp_path / "prompts.toml"
    path.write_text(
        'cot_system = "Think, then answer."\n'
        'cot_user = """Q: {problem}\n{options}"""\n'
        'history_item = "({index}) {content}"\n',
        encoding="utf-8",
    )
    prompts = load_prompt_set(path)
    assert prompts.cot_system == "Think, then answer."
    assert prompts.output_system == OUTPUT_SYSTEM  # untouched keys keep their defaults
    assert cot_messages("Why?", OPTIONS, prompts) == [
        {"role": "system", "content": "Think, then answer."},
        {"role": "user", "content": "Q: Why?\n" + OPTIONS},
    ]
    assert numbered(["a", "b"], prompts) == "(1) a\n(2) b"


def test_load_prompt_set_from_json_replaces_texts(tmp_path):
    path = tmp_path / "prompts.json"
    path.write_text(
        json.dumps({"inference_system": "Pick one:\n{action_list}", "action_line": "* {name} = {description}"}),
        encoding="utf-8",
    )
    prompts = load_prompt_set(str(path))
    system = inference_messages("x.", [], ACTION_SETS["SAS"], prompts)[0]["content"]
    assert system == f"Pick one:\n* inference = {ACTION_DESCRIPTIONS['inference']}\n* wait = {ACTION_DESCRIPTIONS['wait']}"


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    with pytest.raises(PromptError, match="prompts file not found") as exc:
        load_prompt_set(tmp_path / "nope.toml")
    _one_line(exc)


def test_unknown_key(tmp_path):
    path = _write(tmp_path, "p.toml", 'cot_sytem = "typo"\n')
    with pytest.raises(PromptError, match="unknown keys cot_sytem; known: action_line, cot_system") as exc:
        load_prompt_set(path)
    _one_line(exc)


def test_missing_placeholder(tmp_path):
    path = _write(tmp_path, "p.toml", 'output_user = "{history} {problem}"\n')
    with pytest.raises(PromptError, match=r"output_user lacks placeholder\(s\) \{options\}") as exc:
        load_prompt_set(path)
    _one_line(exc)


def test_unknown_placeholder(tmp_path):
    path = _write(tmp_path, "p.json", json.dumps({"cot_user": "{problem} {options} {answer}"}))
    with pytest.raises(PromptError, match=r"cot_user has unknown placeholder\(s\) \{answer\}") as exc:
        load_prompt_set(path)
    _one_line(exc)


def test_optional_placeholder_may_be_left_out(tmp_path):
    # {example} is allowed but not required in inference_system
    path = _write(tmp_path, "p.toml", 'inference_system = "Choose:\\n{action_list}"\n')
    prompts = load_prompt_set(path)
    assert prompts.inference_system == "Choose:\n{action_list}"
    system = inference_messages("x.", [], ACTION_SETS["SAS"], prompts)[0]["content"]
    assert system.startswith("Choose:\n- inference: ")


def test_invalid_template(tmp_path):
    path = _write(tmp_path, "p.json", json.dumps({"cot_user": "{problem} {options"}))
    with pytest.raises(PromptError, match="cot_user is not a valid template") as exc:
        load_prompt_set(path)
    _one_line(exc)


def test_non_string_value(tmp_path):
    path = _write(tmp_path, "p.json", json.dumps({"cot_user": 3}))
    with pytest.raises(PromptError, match="cot_user must be a string"):
        load_prompt_set(path)


@pytest.mark.parametrize(
    "name, text",
    [("p.toml", 'cot_system = "unterminated\n'), ("p.toml", "= 3\n"), ("p.json", '{"cot_system": '), ("p.json", "not json")],
)
def test_bad_syntax(tmp_path, name, text):
    with pytest.raises(PromptError, match="cannot parse prompts file") as exc:
        load_prompt_set(_write(tmp_path, name, text))
    _one_line(exc)


@pytest.mark.parametrize("text", ["[1]", "5", "null", '["cot_user"]'])
def test_json_top_level_must_be_an_object(tmp_path, text):
    with pytest.raises(PromptError):
        load_prompt_set(_write(tmp_path, "p.json", text))


def test_braces_in_questions_and_actions_are_not_templates():
    # MMLU-Pro questions contain LaTeX such as \frac{1}{2}; they are values, never formatted
    problem = r"Compute \frac{1}{2} + {x} + {problem}."
    actions = [Action("inference", "use {history} and {0}", STRICT)]
    user = inference_messages(problem, actions, ACTION_SETS["CAS"], P)[1]["content"]
    assert problem in user and "1. inference: use {history} and {0}" in user
    out = output_messages(problem, "Options are:\n(A): {1}", actions, P)[1]["content"]
    assert problem in out and "(A): {1}" in out and "1. use {history} and {0}" in out


def test_shipped_v1_layout_prompts_render_the_v1_history_structure():
    """Each kept reply as written, numbered (1) (2), joined by spaces, in both stages."""
    prompts = load_prompt_set(Path(__file__).resolve().parents[1] / "examples" / "prompts_v1_layout.toml")
    kept = [parse_reply("action background. Light scatters.", ACTION_SETS["CAS"], "v1"),
            parse_reply("action wait.", ACTION_SETS["CAS"], "v1"),
            parse_reply("action inference.\nShort waves scatter more.  ", ACTION_SETS["CAS"], "v1")]
    expected = "(1) action background. Light scatters. (2) action inference.\nShort waves scatter more."
    user = inference_messages("The sky is blue.", kept, ACTION_SETS["CAS"], prompts)[1]["content"]
    assert user.endswith(expected)
    final = output_messages("The sky is blue. Why?", OPTIONS, kept, prompts)[1]["content"]
    assert expected in final and final.endswith(OPTIONS)
    # the defaults keep the toolkit's layout: NAME: content to inference, content alone to output
    default = inference_messages("x.", kept, ACTION_SETS["CAS"], P)[1]["content"]
    assert default.endswith("1. background: Light scatters.\n2. inference: Short waves scatter more.")
    assert "1. Light scatters.\n2. Short waves scatter more." in output_messages("x.", OPTIONS, kept, P)[1]["content"]


def test_item_templates_must_show_the_action(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('history_item = "({index}) {name}"\n', encoding="utf-8")
    with pytest.raises(PromptError, match="content.*reply"):
        load_prompt_set(path)
    path.write_text('inference_history_item = "({index}) {reply} {other}"\n', encoding="utf-8")
    with pytest.raises(PromptError, match="unknown placeholder"):
        load_prompt_set(path)
