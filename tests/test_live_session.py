"""The live session: segment tracking, the background worker, cancellation,
replay in real time with a slow scripted model, and one short replay with the embedded model."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import pytest

import live_session
from live_mind import cli, live_cli
from live_mind.formats import make_format
from live_mind.live import LiveEvent, LiveSession, SegmentTracker, replay
from live_mind.methods.livemind import LiveMindController
from live_mind.models import registry
from live_mind.models.base import ChatRequest, Completion
from live_mind.models.scripted import ScriptedModel
from live_mind.segment import split

QUESTION = "The sky is blue. It is noon. Why is the sky blue?"
OPTIONS = "Options are:\n(A): red\n(B): scattering"


@dataclass
class SleepyModel:
    """A scripted model that takes ``seconds`` of real time per call.

    With ``stoppable`` it honours the request's ``stop`` signal (the chat-model
    protocol's stop) and returns early once it is set."""

    seconds: float = 0.3
    final_seconds: float | None = None
    stoppable: bool = True
    inner: ScriptedModel = field(default_factory=lambda: ScriptedModel(responder=_respond))
    name: str = "sleepy"
    stopped: int = 0

    def complete(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        start = time.perf_counter()
        final = bool(requests[0].choices) or "Options are" in requests[0].messages[-1]["content"]
        budget = self.final_seconds if final and self.final_seconds is not None else self.seconds
        stop = requests[0].stop
        while time.perf_counter() - start < budget:
            if self.stoppable and stop is not None and stop.is_set():
                self.stopped += 1
                break
            time.sleep(0.005)
        plain = [replace(r, stop=None) for r in requests] if not self.stoppable else requests
        [out] = self.inner.complete(plain)
        out.seconds = time.perf_counter() - start
        return [out]


def _respond(request: ChatRequest) -> str:
    if request.choices:
        return "B"
    if "Options are" in request.messages[-1]["content"]:
        return "Light scatters. The answer is (B)."
    return "action inference. about the sky"


def controller(model, fmt: str = "UA-SPI", **kwargs) -> LiveMindController:
    return LiveMindController(model, prompt_format=make_format(fmt), **kwargs)


def arrivals_ok(result) -> None:
    for call in result.calls:
        assert call.arrival <= call.start + 1e-6 and call.start <= call.end


# --------------------------------------------------------------------------- segments


def test_segment_tracker_completes_a_sentence_when_the_next_one_starts():
    tracker = SegmentTracker(split)
    done = []
    for i in range(1, len(QUESTION) + 1):
        done.append((i, tracker.update(QUESTION[:i])))
    completed = [(i, seg) for i, segs in done for seg in segs]
    assert completed == [(18, "The sky is blue. "), (30, "It is noon. ")]
    assert tracker.finish(QUESTION) == ["Why is the sky blue?"]
    assert "".join(tracker.segments) == QUESTION and tracker.consumed == len(QUESTION)
    with pytest.raises(ValueError, match="no longer starts"):
        tracker.update("The sky is red.")


def test_segment_tracker_other_granularities():
    tracker = SegmentTracker(lambda t: split(t, "word"))
    tracker.update("one two th")
    assert tracker.segments == ["one ", "two "]
    assert tracker.finish("one two three") == ["three"]


# --------------------------------------------------------------------------- the worker and replay


def test_replay_records_latency_and_actions():
    model = SleepyModel(seconds=0.15)
    events: list[LiveEvent] = []
    session = LiveSession(controller(model), OPTIONS, 2, on_event=events.append)
    result = replay(session, QUESTION, OPTIONS, typing_speed=0.01)
    kinds = [s.kind for s in result.steps]
    assert kinds[-1] == "final" and kinds.count("inference") >= 2
    assert result.response == "Light scatters. The answer is (B)."
    # latency = final end - input complete, about one final call (0.15 s)
    assert 0.1 < result.latency < 1.0
    assert result.time_info.latency == pytest.approx(result.calls[-1].end - result.input_complete)
    assert result.calls[-1].arrival == result.input_complete
    arrivals_ok(result)
    assert result.input_complete >= (len(QUESTION) + 1 + len(OPTIONS)) * 0.01 - 0.05
    assert [e.kind for e in events if e.kind == "segment"] == ["segment"] * 3
    assert any(e.kind == "action" and e.step.action_name == "inference" for e in events)
    assert events[-1].kind == "final" and result.streamed  # the scripted model streams word by word
    assert [e.text for e in events if e.kind == "token"] == ["Light ", "scatters. ", "The ", "answer ", "is ", "(B)."]
    shown = "".join(e.text for e in events if e.kind in ("final_start", "token", "final"))
    assert shown == result.response


def test_latest_takes_all_sentences_completed_while_busy():
    model = SleepyModel(seconds=0.5)
    session = LiveSession(controller(model), OPTIONS, 2, schedule="latest")
    text = "One. Two. Three. Four. Five."
    result = replay(session, text, OPTIONS, typing_speed=0.02)
    visible = [s.segments for s in result.steps if s.kind == "inference"]
    assert visible == sorted(visible) and len(visible) < 5 and visible[-1] == 5
    assert any(b - a > 1 for a, b in zip([0, *visible], visible))


def test_every_works_through_each_sentence_even_after_the_input_completes():
    model = SleepyModel(seconds=0.3, final_seconds=0.05)
    session = LiveSession(controller(model), OPTIONS, 2, schedule="every")
    result = replay(session, "One. Two. Three.", OPTIONS, typing_speed=0.005, options_arrival="instant")
    assert [s.segments for s in result.steps if s.kind == "inference"] == [1, 2, 3]
    assert result.time_info.overhead_time > 0.3  # the model was still busy when the input completed
    assert result.latency > result.time_info.overhead_time


def test_cancel_on_complete_really_stops_the_running_call():
    model = SleepyModel(seconds=3.0, final_seconds=0.1)
    session = LiveSession(controller(model), OPTIONS, 2, cancel_on_complete=True)
    start = time.perf_counter()
    result = replay(session, QUESTION, OPTIONS, typing_speed=0.002, options_arrival="instant")
    assert time.perf_counter() - start < 2.5
    assert model.stopped == 1
    cancelled = [s for s in result.steps if s.parse_rule == "cancelled"]
    assert len(cancelled) == 1 and result.calls[0].cancelled
    assert result.time_info.overhead_time < 0.2 and result.latency < 0.6
    assert [m for m in result.steps[-1].messages if m["role"] == "assistant"] == []  # its output was dropped


def test_cancel_without_a_stop_hook_waits_and_drops_the_output():
    model = SleepyModel(seconds=1.0, final_seconds=0.05, stoppable=False)
    session = LiveSession(controller(model), OPTIONS, 2, cancel_on_complete=True)
    result = replay(session, "One sentence. Another one.", OPTIONS, typing_speed=0.002, options_arrival="instant")
    assert [s.parse_rule for s in result.steps] == ["cancelled", None]
    assert result.time_info.overhead_time > 0.5 and result.latency > 0.5


def test_letter_answer_and_the_v1_format():
    model = SleepyModel(seconds=0.05)
    session = LiveSession(controller(model, "v1", final_answer="letter"), OPTIONS, 2)
    result = replay(session, QUESTION, OPTIONS, typing_speed=0.005)
    assert result.response == "The answer is (B)"
    with pytest.raises(ValueError, match="needs options"):
        LiveSession(controller(model, final_answer="letter"), "", 0)


def test_worker_errors_surface_in_complete():
    class Broken(SleepyModel):
        def complete(self, requests):
            raise RuntimeError("boom")

    session = LiveSession(controller(Broken()), OPTIONS, 2)
    with pytest.raises(RuntimeError, match="boom"):
        replay(session, QUESTION, OPTIONS, typing_speed=0.002)


# --------------------------------------------------------------------------- the front end


def test_load_replay_json_and_text(tmp_path: Path):
    path = tmp_path / "q.json"
    path.write_text(json.dumps([{"question": "Q1?", "options": ["a", "b"], "answer": "A"}, {"question": "Q2?"}]))
    assert live_cli.load_replay(str(path)) == {"question": "Q1?", "options": ["a", "b"], "answer": "A"}
    assert live_cli.load_replay(str(path), 1)["options"] == []
    text = tmp_path / "q.txt"
    text.write_text("The sky is blue.\nWhy is it blue?\nOptions are:\n(A): red\nB. scattering\nC) dust\n")
    assert live_cli.load_replay(str(text)) == {
        "question": "The sky is blue. Why is it blue?", "options": ["red", "scattering", "dust"], "answer": None}
    for bad, message in [("missing.json", "not found"), ("bad.json", "cannot parse"), ("empty.txt", "no question")]:
        target = tmp_path / bad
        if bad != "missing.json":
            target.write_text("{" if bad == "bad.json" else "(A) only an option\n")
        with pytest.raises(cli.UsageError, match=message):
            live_cli.load_replay(str(target))
    with pytest.raises(cli.UsageError, match="--index 5"):
        live_cli.load_replay(str(path), 5)


def test_cli_errors_before_loading(capsys):
    assert live_session.main(["--final_answer", "letter", "--options", ""]) == 2
    assert "needs options" in capsys.readouterr().err
    assert live_session.main(["--model", "nope", "--options", "a|b"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


# --------------------------------------------------------------------------- the shared command line

FIXTURES = Path(__file__).parent / "fixtures"
ENTRY = """[models.live-scripted]
backend = "scripted"
prime_actions = true
constrain_actions = true
inference_max_new_tokens = 7
seconds = 0.01
rules = { "Options are" = "Light scatters. The answer is (B).", "." = "inference. about the sky" }
"""


def test_live_session_uses_the_model_entry_defaults(tmp_path, monkeypatch):
    models = tmp_path / "models.toml"
    models.write_text(ENTRY)
    built = []
    real_build = registry.build
    monkeypatch.setattr(registry, "build", lambda spec, **kw: built.append(real_build(spec, **kw)) or built[-1])
    question = tmp_path / "q.json"
    question.write_text(json.dumps({"question": QUESTION, "options": ["red", "scattering"], "answer": "B"}))
    out = tmp_path / "live.json"
    code = live_cli.main(["--models", str(models), "--model", "live-scripted", "--replay", str(question),
                          "--typing_speed", "0.002", "--quiet", "--output_file", str(out)])
    assert code == 0
    [model] = built
    inference = [r for r in model.calls if r.lead_choices is not None]
    assert inference and all(r.max_new_tokens == 7 and r.assistant_prefix.startswith("action") for r in inference)
    assert model.calls[-1].max_new_tokens == 512 and model.calls[-1].lead_choices is None
    config = json.loads(out.read_text())["config"]
    assert config["constrain_actions"] is True and config["inference_max_new_tokens"] == 7
    assert config["model_config"]["model"]["name"] == "live-scripted"


def test_the_default_model_gets_the_solvers_settings():
    live = cli.validate(live_cli.parse_args(["--options", "a|b"]), "live").config
    assert live["model"] == cli.DEFAULT_MODEL == registry.DEFAULT_MODEL
    assert live["constrain_actions"] is True and live["inference_max_new_tokens"] == 96 and live["prime_actions"] is True
    assert live["prompt_format"] == "UA-SPI" and live["schedule"] == "latest" and live["use_lm"] is True


def test_live_record_saves_the_run_configuration_keys_of_run_solver(tmp_path, monkeypatch):
    import run_solver

    monkeypatch.delenv("LIVEMIND_TEST_MARKER", raising=False)
    models = str(FIXTURES / "scripted_models.toml")
    solved = tmp_path / "solver" / "all.json"
    assert run_solver.main(["--models", models, "--model", "scripted-fast", "--use_lm", "--num_questions", "1",
                            "--output_file", str(solved)]) == 0
    solver_config = json.loads(solved.with_suffix(".config.json").read_text())
    question = tmp_path / "q.txt"
    question.write_text("The problem so far is simple. What is it?\n(A): 1\n(B): 2\n")
    out = tmp_path / "live.json"
    assert live_cli.main(["--models", models, "--model", "scripted-fast", "--replay", str(question),
                          "--typing_speed", "0.001", "--quiet", "--output_file", str(out)]) == 0
    record = json.loads(out.read_text())
    live_config = record["config"]
    solver_flags = set(vars(run_solver.parse_args(["--use_lm"])))
    # the live session has --method, not the paper's alias flag, but saves the alias's value as every run does
    live_flags = set(vars(live_cli.parse_args([]))) | {"use_lm"}
    assert live_config["use_lm"] is True and "method" not in live_config
    resolved = set(solver_config) - solver_flags
    assert resolved == set(live_config) - live_flags
    assert {"script", "model_config", "versions", "config_id", "prompt_texts"} <= resolved
    for key in ("model_config", "prime_actions", "constrain_actions", "inference_max_new_tokens", "max_new_tokens"):
        assert live_config[key] == solver_config[key], key
    assert record["config_id"] == live_config["config_id"]


# --------------------------------------------------------------------------- the embedded model


@pytest.mark.model
def test_live_replay_with_the_embedded_model(embedded_model, tmp_path, monkeypatch, capsys):
    """Short replay through the command line (model loading replaced by the shared fixture):
    streams the answer, stops a running call, writes a record with the measured latency."""
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"question": QUESTION, "options": ["red", "light scattering"], "answer": "B"}))
    monkeypatch.setattr(registry, "build", lambda spec, **kw: embedded_model)
    out = tmp_path / "live.json"
    code = live_session.main(["--replay", str(path), "--typing_speed", "0.03", "--inference_max_new_tokens", "12",
                              "--max_new_tokens", "24", "--cancel_on_complete", "--baseline",
                              "--output_file", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "latency:" in printed and "(streamed)" in printed and "baseline (CoT) latency" in printed
    record = json.loads(out.read_text())
    assert record["time_info"]["latency"] > 0 and record["solution"]
    assert record["steps"][-1]["kind"] == "final" and record["baseline"]["latency"] > 0
    assert record["solution"] in printed.replace("\r", "")
    finals = record["usage"]["cached_tokens"][-1]
    assert finals > 0  # the final call reused the conversation's KV cache


@pytest.mark.model
def test_stop_signal_keeps_the_cache_and_tokens_stream(embedded_model):
    messages = [{"role": "user", "content": "Count from one to fifty in words."}]
    stop = threading.Event()
    stop.set()
    [stopped] = embedded_model.complete([ChatRequest(messages, max_new_tokens=40, cache_key="stop-test", stop=stop)])
    assert stopped.completion_tokens == 0 and stopped.finish_reason == "cancelled"
    pieces: list[str] = []
    [again] = embedded_model.complete([ChatRequest(messages, max_new_tokens=8, cache_key="stop-test", on_token=pieces.append)])
    assert again.cached_tokens > 0 and "".join(pieces) == again.text and len(pieces) > 1


# --------------------------------------------------------------------------- the baseline's token limit

SAMPLE = Path(__file__).resolve().parent.parent / "live_mind" / "sample_questions.json"


def test_live_baseline_without_max_new_tokens_uses_the_resolved_limit(tmp_path, monkeypatch, capsys):
    """``--baseline`` without ``--max_new_tokens``: the baseline's request carries the
    resolved limit (the entry's, else the default), as the LiveMind answer's does."""
    models = tmp_path / "models.toml"
    models.write_text(ENTRY)
    built = []
    real_build = registry.build
    monkeypatch.setattr(registry, "build", lambda spec, **kw: built.append(real_build(spec, **kw)) or built[-1])
    code = live_cli.main(["--models", str(models), "--model", "live-scripted", "--replay", str(SAMPLE),
                          "--typing_speed", "0.001", "--quiet", "--baseline"])
    assert code == 0
    [model] = built
    baseline, answer = model.calls[-1], model.calls[-2]
    assert baseline.max_new_tokens == answer.max_new_tokens == cli.DEFAULT_MAX_NEW_TOKENS
    assert "baseline (CoT) latency" in capsys.readouterr().out


@pytest.mark.model
def test_live_baseline_on_the_embedded_model_without_max_new_tokens(embedded_model, tmp_path, monkeypatch, capsys):
    """The README's ``live_session.py --replay live_mind/sample_questions.json --baseline`` on
    the transformers backend (whose request validation rejects a missing limit); the limit
    comes from the model entry, not from the flag."""
    models = tmp_path / "models.toml"
    models.write_text('[models.small]\nbackend = "transformers"\ngguf = "embedded"\nprime_actions = true\n'
                      'constrain_actions = true\nmax_new_tokens = 16\ninference_max_new_tokens = 8\n')
    monkeypatch.setattr(registry, "build", lambda spec, **kw: embedded_model)
    code = live_session.main(["--models", str(models), "--model", "small", "--replay", str(SAMPLE),
                              "--typing_speed", "0.01", "--quiet", "--baseline"])
    assert code == 0
    assert "baseline (CoT) latency" in capsys.readouterr().out
# --------------------------------------------------------------------------- completion and close


def test_complete_with_text_starts_no_inference_call_on_the_segments_it_completes():
    for _ in range(20):  # was a race: the worker could start a call before the input counted as complete
        session = LiveSession(controller(SleepyModel(seconds=0.001)), OPTIONS, 2)
        result = session.complete(QUESTION)
        assert [s.kind for s in result.steps] == ["final"] and len(result.segments) == 3


def test_close_stops_the_running_call_and_the_worker():
    model = SleepyModel(seconds=5.0)
    session = LiveSession(controller(model), OPTIONS, 2)
    session.type("The sky is blue. It")
    time.sleep(0.1)  # the call on the first sentence is running
    session.close()
    session._worker.join(2.0)
    assert not session._worker.is_alive() and model.stopped == 1
    session.type("The sky is blue. It is noon. Why")  # typing after close starts nothing
    time.sleep(0.05)
    assert len(model.inner.calls) == 1


def test_a_backend_away_longer_than_max_outage_stops_the_session_with_one_line_and_75(tmp_path, capsys):
    down = tmp_path / "down"
    down.touch()
    models = tmp_path / "models.toml"
    models.write_text(f"""[models.live-away]
backend = "scripted"
seconds = 0.01
unavailable_while = "{down}"
""")
    question = tmp_path / "q.json"
    question.write_text(json.dumps({"question": QUESTION, "options": ["red", "scattering"]}))
    start = time.monotonic()
    code = live_cli.main(["--models", str(models), "--model", "live-away", "--replay", str(question),
                          "--typing_speed", "0.001", "--quiet", "--max_outage", "0.3"])
    err = capsys.readouterr().err
    assert code == 75 and time.monotonic() - start < 10
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "backend unavailable" in lines[0] and "max_outage 0.3" in lines[0]
    assert "Traceback" not in err
    assert live_cli.parse_args(["--max_outage", "5"]).max_outage == 5.0
    assert "selection" not in vars(live_cli.parse_args([])), "--selection means nothing in a live session"


# --------------------------------------------------------------------------- other methods, live


def test_predgen_live_a_newer_sentence_stops_the_running_speculation():
    from live_mind.methods.predgen import PredGen

    model = SleepyModel(seconds=0.4, final_seconds=0.05, inner=ScriptedModel(default="Scattering. The answer is (B)."))
    events: list[LiveEvent] = []
    session = LiveSession(PredGen(model), OPTIONS, 2, schedule="every", on_event=events.append)
    result = replay(session, "The sky is blue. It is noon now. It is clear. Why is the sky blue?", OPTIONS,
                    typing_speed=0.01)
    specs = [s for s in result.steps if s.kind == "speculation"]
    assert specs and model.stopped >= 1 and any(s.note == "cancelled" for s in specs)
    assert all(s.segments == c.segments for s, c in zip(specs, result.calls))
    assert all(e.kind == "cancelled" for e in events if e.step is not None and e.step.note == "cancelled")
    assert session.schedule == "latest" and result.steps[-1].kind == "final" and result.method == "predgen"
    assert result.steps[-1].note == "afresh"  # this wrapper declares no draft verification: it is never sent a draft
    assert result.steps[-1].messages and "draft" not in repr(model.inner.calls[-1].draft or "")


def test_continuous_live_keeps_one_conversation_and_the_thinking_a_new_sentence_cut():
    from live_mind.methods.continuous import Continuous

    inner = ScriptedModel(responder=lambda r: "Scattering. The answer is (B)." if "Options are" in str(r.messages)
                          else "Thinking about the sky.")
    model = SleepyModel(seconds=0.3, final_seconds=0.05, inner=inner)
    session = LiveSession(Continuous(model), OPTIONS, 2)
    result = replay(session, "The sky is blue. It is noon now. It is clear. Why is the sky blue?", OPTIONS,
                    typing_speed=0.01)
    requests = inner.calls
    for earlier, later in zip(requests, requests[1:]):
        assert later.messages[:len(earlier.messages)] == earlier.messages  # extended, never rebuilt
    thinks = [s for s in result.steps if s.kind == "think"]
    assert thinks and result.steps[-1].kind == "final" and "(B)" in result.response
    assert any(s.note == "cut" for s in thinks) and model.stopped >= 1  # a new sentence stopped the thinking...
    cut = next(i for i, s in enumerate(thinks) if s.note == "cut")
    assert {"role": "assistant", "content": thinks[cut].response} in requests[cut + 1].messages  # ...which was kept
