"""The real-time solver with a scripted model (paper §4.1).

Timeline used throughout (0.25 s per character), as the v1 user types: the question "The
sky is blue. Why is it blue?" has the segments "The sky is blue. " and "Why is it blue?";
the user types the Punkt sentences "The sky is blue." (16 characters, the space between
sentences is not typed) and "Why is it blue?" (15), then the options with a newline after
every option, "Options are:\\n(A): red\\n(B): blue\\n" (32).  So the segments arrive at
4.0 and 7.75 s and the options at 7.75 + 8.0 = 15.75 s.  The CoT baseline types the whole
question (32 characters, spaces included) and the options: complete at 16.0 s.
"""

from __future__ import annotations

import json

import pytest

from live_mind.methods.cot import CoTController
from live_mind.methods.livemind import LiveMindController
from live_mind.models.base import ChatRequest, ContextLengthExceeded
from live_mind.models.scripted import ScriptedModel
from live_mind.records import MMLU_FIELDS
from live_mind.solver import TimingConfig, question_timeline, solve_question

ROW = {
    "question_id": 11,
    "question": "The sky is blue. Why is it blue?",
    "options": ["red", "blue"],
    "answer": "B",
    "answer_index": 1,
    "cot_content": "",
    "category": "physics",
    "src": "test",
}
TIME_KEYS = ["current_time", "latency", "total_gen_time", "overhead_time"]
STEP_KEYS = {"kind", "segments", "arrival", "start", "end", "seconds", "prompt_tokens", "completion_tokens",
             "cached_tokens", "response", "action", "parse_rule"}


def livemind_model(seconds: float = 1.0, final: str = "Blue light scatters. The answer is (B).") -> ScriptedModel:
    replies = iter(["action background. Rayleigh scattering", "action wait."])

    def respond(request: ChatRequest) -> str:
        if request.messages[0]["content"].startswith("You are reading"):
            return next(replies)
        return final

    return ScriptedModel(responder=respond, seconds=seconds)


def test_timeline_of_the_test_question():
    controller = LiveMindController(ScriptedModel())
    segments = controller.segmenter(ROW["question"])
    arrivals, options_at, delays = question_timeline(ROW["question"], "Options are:\n(A): red\n(B): blue\n", segments, TimingConfig())
    assert segments == ["The sky is blue. ", "Why is it blue?"]
    assert (arrivals, options_at, delays) == ([4.0, 7.75], 15.75, [4.0, 3.75, 8.0])


# --------------------------------------------------------------------------- LiveMind records


def test_livemind_record_schema_model_faster_than_typing():
    record = solve_question(LiveMindController(livemind_model(1.0)), ROW, TimingConfig(), extra={"config_id": "abc123"})
    assert list(record)[: len(MMLU_FIELDS)] == list(MMLU_FIELDS)
    assert {k: record[k] for k in MMLU_FIELDS} == ROW
    assert record["solution"] == "Blue light scatters. The answer is (B)."
    assert (record["pred"], record["correct"], record["error"], record["mode"]) == ("B", True, None, "livemind")
    assert record["config_id"] == "abc123"

    usage = record["usage"]
    assert set(usage) >= {"completion_tokens", "prompt_tokens", "total_tokens"}
    assert all(len(v) == 3 for v in usage.values())  # 2 sentences + the final call
    assert usage["total_tokens"] == [p + c for p, c in zip(usage["prompt_tokens"], usage["completion_tokens"])]

    # calls 4.0-5.0 and 7.75-8.75; final 15.75-16.75
    assert list(record["time_info"]) == TIME_KEYS
    assert record["time_info"] == {"current_time": 16.75, "latency": 1.0, "total_gen_time": 3.0, "overhead_time": 0.0}
    steps = record["steps"]
    assert all(STEP_KEYS <= set(s) for s in steps)
    assert [(s["kind"], s["segments"], s["arrival"], s["start"], s["end"]) for s in steps] == [
        ("inference", 1, 4.0, 4.0, 5.0),
        ("inference", 2, 7.75, 7.75, 8.75),
        ("final", 2, 15.75, 15.75, 16.75),
    ]
    assert [(s["action"], s["parse_rule"]) for s in steps] == [("background", "strict"), ("wait", "strict"), (None, None)]
    assert [s["response"] for s in steps] == ["action background. Rayleigh scattering", "action wait.", record["solution"]]
    assert record["actions"] == [{"type": "background", "content": "Rayleigh scattering", "parse_rule": "strict", "step": 0}]
    json.dumps(record)  # serialisable as is


def test_livemind_model_slower_than_typing():
    record = solve_question(LiveMindController(livemind_model(7.0)), ROW, TimingConfig())
    # 4.0-11.0; 11.0-18.0 (waits for the model); final 18.0-25.0.
    # latency 25.0 - 15.75 = 9.25; overhead 18.0 - 15.75 = 2.25; total 3 x 7 = 21.
    assert record["time_info"] == {"current_time": 25.0, "latency": 9.25, "total_gen_time": 21.0, "overhead_time": 2.25}
    assert [(s["start"], s["end"]) for s in record["steps"]] == [(4.0, 11.0), (11.0, 18.0), (18.0, 25.0)]


def test_livemind_cancel_on_complete():
    record = solve_question(LiveMindController(livemind_model(7.0)), ROW, TimingConfig(cancel_on_complete=True))
    # 4.0-11.0; 11.0-18.0 cut at 15.75 (charged 4.75, output dropped); final 15.75-22.75.
    assert record["time_info"] == {"current_time": 22.75, "latency": 7.0, "total_gen_time": 18.75, "overhead_time": 0.0}
    assert [(s["action"], s["parse_rule"], s["cancelled"]) for s in record["steps"][:2]] == [
        ("background", "strict", False),
        ("cancelled", "cancelled", True),
    ]
    assert len(record["usage"]["prompt_tokens"]) == 3
    assert [a["step"] for a in record["actions"]] == [0]


def test_wrong_prediction_and_no_prediction():
    wrong = solve_question(LiveMindController(livemind_model(final="The answer is (A).")), ROW, TimingConfig())
    assert (wrong["pred"], wrong["correct"]) == ("A", False)
    none = solve_question(LiveMindController(livemind_model(final="I do not know.")), ROW, TimingConfig())
    assert (none["pred"], none["correct"], none["error"]) == (None, False, None)


def test_typing_speed_scales_the_timeline():
    record = solve_question(LiveMindController(livemind_model(1.0)), ROW, TimingConfig(typing_speed=0.5))
    # arrivals 8.0 and 15.5; options 15.5 + 16.0 = 31.5; final 31.5-32.5.
    assert [s["start"] for s in record["steps"]] == [8.0, 15.5, 31.5]
    assert record["time_info"]["current_time"] == 32.5


def test_jitter_is_reproducible_per_question():
    timing = TimingConfig(jitter_sigma=0.5, seed=3)
    first = solve_question(LiveMindController(livemind_model()), ROW, timing)
    again = solve_question(LiveMindController(livemind_model()), ROW, timing)
    other = solve_question(LiveMindController(livemind_model()), {**ROW, "question_id": 12}, timing)
    assert first["steps"] == again["steps"] and first["time_info"] == again["time_info"]
    assert [s["arrival"] for s in other["steps"]] != [s["arrival"] for s in first["steps"]]
    assert [s["arrival"] for s in first["steps"]][:2] != [4.0, 7.75]


# --------------------------------------------------------------------------- CoT baseline


def test_cot_record():
    model = ScriptedModel(default="Rayleigh. The answer is (B).", seconds=7.0)
    record = solve_question(CoTController(model), ROW, TimingConfig())
    assert len(model.calls) == 1
    assert (record["mode"], record["pred"], record["correct"], record["error"]) == ("cot", "B", True, None)
    assert all(len(v) == 1 for v in record["usage"].values())
    # one call on the complete question at 16.0: latency = its time
    assert record["time_info"] == {"current_time": 23.0, "latency": 7.0, "total_gen_time": 7.0, "overhead_time": 0.0}
    assert [(s["kind"], s["segments"], s["action"], s["parse_rule"]) for s in record["steps"]] == [("final", 2, None, None)]
    assert record["actions"] == []


def test_cot_step_has_times():
    record = solve_question(CoTController(ScriptedModel(seconds=7.0)), ROW, TimingConfig())
    step = record["steps"][0]
    assert (step["arrival"], step["start"], step["end"]) == (16.0, 16.0, 23.0)


# --------------------------------------------------------------------------- failures become records


@pytest.mark.parametrize("question", ["", "   \n ", None])
@pytest.mark.parametrize("controller_kind", ["livemind", "cot"])
def test_empty_question_gives_an_error_record(question, controller_kind):
    model = ScriptedModel()
    controller = LiveMindController(model) if controller_kind == "livemind" else CoTController(model)
    record = solve_question(controller, {**ROW, "question": question}, TimingConfig(), extra={"config_id": "x"})
    assert record["error"] == "empty question"
    assert (record["pred"], record["correct"], record["solution"], record["mode"]) == (None, False, "", controller_kind)
    assert record["steps"] == [] and record["actions"] == [] and record["config_id"] == "x"
    assert record["usage"]["prompt_tokens"] == [] and record["usage"]["completion_tokens"] == []
    assert model.calls == []


def test_model_error_gives_an_error_record():
    model = livemind_model()
    model.fail_on = "Why is it blue"  # the second inference call sees the second sentence
    record = solve_question(LiveMindController(model), ROW, TimingConfig())
    assert record["error"] == "ModelError: scripted failure on 'Why is it blue'"
    assert (record["pred"], record["correct"], record["steps"]) == (None, False, [])
    assert len(model.calls) == 2
    assert [k for k in MMLU_FIELDS if record[k] != ROW[k]] == []


class TooLong:
    name = "too-long"

    def complete(self, requests):
        raise ContextLengthExceeded("prompt of 9000 tokens exceeds the context of 8192")


def test_context_length_error_gives_an_error_record_and_the_next_question_runs():
    record = solve_question(CoTController(TooLong()), ROW, TimingConfig())
    assert record["error"] == "ContextLengthExceeded: prompt of 9000 tokens exceeds the context of 8192"
    assert record["mode"] == "cot" and record["pred"] is None
    # a controller reused after a failure starts clean
    controller = LiveMindController(livemind_model())
    model = controller.inference_model
    model.fail_on = "Why is it blue"
    assert solve_question(controller, ROW, TimingConfig())["error"]
    model.fail_on = None
    model.responder = lambda r: "action wait." if r.messages[0]["content"].startswith("You are reading") else "The answer is (B)."
    ok = solve_question(controller, {**ROW, "question_id": 12}, TimingConfig())
    assert ok["error"] is None and ok["correct"] and len(ok["steps"]) == 3
