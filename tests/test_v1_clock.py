"""The v1 typing clock to the character (paper §4.1).

The v1 user types each Punkt sentence as ``sent_tokenize`` returns it (no whitespace
between sentences), then ``Options are:\\n(A): ...\\n`` with a newline after every option;
the CoT baseline types the whole question, spaces included, then the same options.  So
the input is complete at ``current_time - latency`` of every published v1 record.
"""

from __future__ import annotations

import json

import pytest
from conftest import shared_path

from live_mind.batch import solve_batch
from live_mind.data import typed_options
from live_mind.methods.cot import CoTController
from live_mind.methods.livemind import LiveMindController
from live_mind.models.scripted import ScriptedModel
from live_mind.segment import punkt_tokenizer, split, typed_pieces
from live_mind.solver import TimingConfig, baseline_input_complete, question_timeline, solve_question

ROW = {
    "question_id": 7, "question": "A ball falls.\n  It starts at rest.  How far does it fall in 2 s?",
    "options": ["20 m", "10 m"], "answer": "A", "answer_index": 0, "cot_content": "", "category": "physics", "src": "t",
}


def test_typed_pieces_drop_only_the_whitespace_between_sentences():
    segments = split(ROW["question"])
    assert segments == ["A ball falls.\n  ", "It starts at rest.  ", "How far does it fall in 2 s?"]
    assert typed_pieces(ROW["question"], segments) == ["A ball falls.", "It starts at rest.", "How far does it fall in 2 s?"]
    words = split(ROW["question"], "word")
    assert "".join(typed_pieces(ROW["question"], words)) == "A ball falls.It starts at rest.How far does it fall in 2 s?"
    for text in ("  Hi there.  ", "Hi.\n\nThere  now. ", " a. b."):  # as sent_tokenize returns them
        assert typed_pieces(text, split(text)) == punkt_tokenizer().tokenize(text)
    with pytest.raises(ValueError):
        typed_pieces("abc", ["ab"])


def test_typed_options_end_with_a_newline():
    assert typed_options(["20 m", "10 m"]) == "Options are:\n(A): 20 m\n(B): 10 m\n"


def test_busy_model_at_completion_gives_the_v1_arithmetic():
    # typed: 13, 18 and 28 characters -> arrivals 3.25, 7.75, 14.75; options (33 chars)
    # 8.25 s later: complete at 23.0.  Each call takes 9 s: 3.25-12.25, 12.25-21.25,
    # 21.25-30.25 (still busy at 23.0: overhead 7.25), final 30.25-39.25 (latency 16.25).
    arrivals, complete, _ = question_timeline(ROW["question"], typed_options(ROW["options"]), split(ROW["question"]), TimingConfig())
    assert (arrivals, complete) == ([3.25, 7.75, 14.75], 23.0)
    replies = iter(["action inference. d = g t^2 / 2", "action wait.", "action inference. 20 m"])
    model = ScriptedModel(responder=lambda r: next(replies) if r.messages[0]["content"].startswith("You are reading")
                          else "The answer is (A).", seconds=9.0)
    record = solve_question(LiveMindController(model), ROW, TimingConfig())
    assert record["time_info"] == {"current_time": 39.25, "latency": 16.25, "total_gen_time": 36.0, "overhead_time": 7.25}
    assert record["time_info"]["current_time"] - record["time_info"]["latency"] == 23.0


def test_baseline_types_the_whole_question():
    # 64 question characters (spaces and the newline included) + 33 option characters
    assert baseline_input_complete(ROW["question"], typed_options(ROW["options"]), TimingConfig()) == 0.25 * 97
    record = solve_question(CoTController(ScriptedModel(default="The answer is (A).", seconds=2.0)), ROW, TimingConfig())
    assert record["time_info"] == {"current_time": 26.25, "latency": 2.0, "total_gen_time": 2.0, "overhead_time": 0.0}


def test_batched_timestamps_are_the_typed_characters():
    model = ScriptedModel(responder=lambda r: "action wait." if r.messages[0]["content"].startswith("You are reading")
                          else "The answer is (A).")
    [record] = solve_batch(lambda: LiveMindController(model), [ROW])
    assert record["timestamp"] == [3.25, 4.5, 7.0, 8.25]


def test_input_complete_matches_every_published_record():
    records = json.loads(shared_path("data/livemind-v1/llama_3_70b_lm/all.json").read_text(encoding="utf-8"))
    assert len(records) == 1400
    worst = 0.0
    for record in records:
        question = record["question"]
        _, complete, _ = question_timeline(question, typed_options(record["options"]), split(question), TimingConfig())
        info = record["time_info"]
        worst = max(worst, abs(complete - (info["current_time"] - info["latency"])))
    assert worst <= 1e-9
