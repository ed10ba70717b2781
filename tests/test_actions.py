"""The action parser (paper §3.2): the strict paper rule, the lenient
fallback for small models, the action sets, and the recorded parse rule."""

from __future__ import annotations

import re

import pytest

from live_mind.actions import (
    ACTION_DESCRIPTIONS,
    ACTION_SETS,
    LENIENT,
    STRICT,
    UNPARSED,
    Action,
    action_set,
    parse_action,
    parse_rule,
)

CAS = ACTION_SETS["CAS"]
SAS = ACTION_SETS["SAS"]
PAPER_RULE = re.compile(r"^action ([a-z]+).[ \n]*(.*)$", re.DOTALL)


# --------------------------------------------------------------------------- action sets


def test_action_sets_match_the_paper():
    assert CAS == ("background", "inference", "hypothesize", "wait")
    assert SAS == ("inference", "wait")
    assert set(ACTION_DESCRIPTIONS) == set(CAS)


@pytest.mark.parametrize("name", ["CAS", "cas", "SAS", "Sas"])
def test_action_set_lookup_is_case_insensitive(name):
    assert action_set(name) == ACTION_SETS[name.upper()]


def test_action_set_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown action set 'XAS'; choose CAS or SAS"):
        action_set("XAS")


# --------------------------------------------------------------------------- strict (paper) rule


@pytest.mark.parametrize(
    "response, name, content",
    [
        ("action inference. x is 2", "inference", "x is 2"),
        ("action background. Ideal gases obey PV = nRT.", "background", "Ideal gases obey PV = nRT."),
        ("action hypothesize. The question may ask for the pressure.", "hypothesize", "The question may ask for the pressure."),
        # content may span lines (DOTALL) and is stripped
        ("action inference. line one\nline two\n", "inference", "line one\nline two"),
        ("action inference.\n\n   after blank lines  ", "inference", "after blank lines"),
        # the paper's "." is any character: a colon (or a newline) works as the separator
        ("action inference: the mass is 3 kg", "inference", "the mass is 3 kg"),
        ("action inference\nnext line", "inference", "next line"),
    ],
)
def test_strict_rule(response, name, content):
    assert PAPER_RULE.match(response)  # these really are inputs of the paper's rule
    action = parse_action(response, CAS)
    assert action == Action(name, content, STRICT)
    assert parse_rule(action) == STRICT


@pytest.mark.parametrize("response", ["action wait.", "action wait. I need the question first.", "action wait.\nmore"])
def test_wait_has_empty_content(response):
    action = parse_action(response, CAS)
    assert action == Action("wait", "", STRICT)
    assert action.is_wait
    assert action.render() == "action wait."


def test_render_is_the_canonical_v1_text():
    assert Action("inference", "x = 2", LENIENT).render() == "action inference. x = 2"
    assert not Action("inference", "x = 2", LENIENT).is_wait


# --------------------------------------------------------------------------- lenient fallback


@pytest.mark.parametrize(
    "response, name, content",
    [
        # case
        ("Action Inference. X is even.", "inference", "X is even."),
        ("ACTION WAIT.", "wait", ""),
        # colon / dash instead of the period, with a capitalised name
        ("Action: Inference. the gas is ideal", "inference", "the gas is ideal"),
        ("action: inference. blah", "inference", "blah"),
        ("Action - Inference: stuff", "inference", "stuff"),
        # leading whitespace and markdown
        ("  action background. bg", "background", "bg"),
        ("\n\naction inference. after newlines", "inference", "after newlines"),
        ("> action inference. quoted", "inference", "quoted"),
        ("**Action: Inference**\nThe gas is ideal.", "inference", "The gas is ideal."),
        ("### Action: Background\nThe topic is optics.", "background", "The topic is optics."),
        ("`action wait.`", "wait", ""),
        # text after the first line is the content
        ("# Inference\nBody line one\nBody line two", "inference", "Body line one\nBody line two"),
        # bare name, with or without a separator
        ("Inference: the speed is constant", "inference", "the speed is constant"),
        ("Hypothesize - it asks for the speed", "hypothesize", "it asks for the speed"),
        ("Background. stuff", "background", "stuff"),
        ("inference", "inference", ""),
        ("wait", "wait", ""),
        ("action wait", "wait", ""),
        ("Wait: not enough yet", "wait", ""),
    ],
)
def test_lenient_rule(response, name, content):
    action = parse_action(response, CAS)
    assert action == Action(name, content, LENIENT)
    assert parse_rule(action) == LENIENT


def test_strict_is_preferred_over_lenient():
    assert parse_action("action inference. x", CAS).rule == STRICT
    assert parse_action("Action inference. x", CAS).rule == LENIENT


@pytest.mark.parametrize("response", ["**Inference:** The gas is ideal.", "**action inference.** The gas is ideal."])
def test_lenient_strips_closing_markdown_after_separator(response):
    assert parse_action(response, CAS) == Action("inference", "The gas is ideal.", LENIENT)


# --------------------------------------------------------------------------- names outside the set


@pytest.mark.parametrize(
    "response",
    ["action background. bg", "  action background. bg", "Background: the topic", "action hypothesize. guess", "Hypothesize - x"],
)
def test_sas_rejects_cas_only_actions(response):
    assert parse_action(response, CAS) is not None
    assert parse_action(response, SAS) is None


@pytest.mark.parametrize(
    "response",
    ["action background. Inference: the gas is ideal", "action hypothesize. Wait, the question asks for x"],
)
def test_sas_rejects_cas_action_whose_content_starts_with_a_sas_name(response):
    assert parse_action(response, SAS) is None


@pytest.mark.parametrize("response", ["action foo. bar", "action inferences. x", "action think. hmm", "action. x", "action"])
def test_unknown_names_are_unparsed(response):
    assert parse_action(response, CAS) is None


def test_default_allowed_set_is_cas():
    assert parse_action("action background. bg") == Action("background", "bg", STRICT)


# --------------------------------------------------------------------------- prose


@pytest.mark.parametrize(
    "response",
    [
        "",
        "   ",
        "\n",
        "In this problem we see a gas.",
        "The answer is (A).",
        "I think inference is good here.",
        "Waiting for more input.",
        "actions are great",
        "action I will infer something",
        "- inference: x",
        "1. inference: x",
        "Let me think step by step.",
    ],
)
def test_prose_is_unparsed(response):
    action = parse_action(response, CAS)
    assert action is None
    assert parse_rule(action) == UNPARSED
