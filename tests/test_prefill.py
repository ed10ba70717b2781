"""Prefill while typing (``live_mind/prefill.py``): the schedule and the timeline.

Same question and profile as ``test_timing_profiles.py``: segments arrive at 4.25 and
8.0 s; the options block "Options are:\\n(A): red\\n(B): blue" (31 characters) is typed
from 8.0 to 15.75 s, so its line 0 ends (13 characters typed) at 11.25 s and line 1 (22)
at 13.5 s.
"""

from __future__ import annotations

import pytest
from test_timing_profiles import PROFILE, ROW, TokenModel
from test_validation import assert_rejected, run_script

from live_mind.formats import make_format
from live_mind.methods.livemind import LiveMindController
from live_mind.models.scripted import ScriptedModel
from live_mind.prefill import OptionsPrefix, next_prefill, options_prefixes
from live_mind.solver import TimingConfig, solve_question

OPTIONS = "Options are:\n(A): red\n(B): blue"


def test_options_prefixes_and_schedule():
    prefixes = options_prefixes(OPTIONS, 8.0, 15.75)
    assert prefixes == [OptionsPrefix(pytest.approx(11.25), "Options are:"), OptionsPrefix(pytest.approx(13.5), "Options are:\n(A): red")]
    assert next_prefill(prefixes, 0, 9.0, 15.75) == (1, pytest.approx(11.25))
    assert next_prefill(prefixes, 0, 14.0, 15.75) == (2, 14.0)  # busy until both lines arrived: one prefill
    assert next_prefill(prefixes, 1, 16.0, 15.75) is None  # input complete: the final call takes over
    assert next_prefill(prefixes, 2, 0.0, 15.75) is None
    # as typed in the v1 protocol (a newline after every option): 0.25 s per character
    typed = options_prefixes(OPTIONS + "\n", 7.75, 15.75)
    assert typed == [OptionsPrefix(pytest.approx(11.0), "Options are:"), OptionsPrefix(pytest.approx(13.25), "Options are:\n(A): red")]


def _run(usages, **timing):
    model = TokenModel(usages)
    record = solve_question(LiveMindController(model), ROW, TimingConfig(profile=PROFILE, prefill_while_typing=True, **timing))
    return record, model


def test_prefills_on_an_idle_model():
    # v1 typing: arrivals 4.0 and 7.75; options typed 7.75-15.75 at 0.25 s per character,
    # "Options are:\n" typed by 11.0 and "(A): red\n" by 13.25.
    # inference 4.0-6.5 and 7.75-10.85; prefill 0.95 s at 11.0; prefill 0.78 s at 13.25; final 1.29 s at 15.75
    record, model = _run([(100, 0, 10), (150, 100, 20), (180, 150, 0), (190, 180, 0), (200, 190, 5)])
    steps = record["steps"]
    assert [s["kind"] for s in steps] == ["inference", "inference", "prefill", "prefill", "final"]
    assert [t for s in steps for t in (s["start"], s["end"])] == pytest.approx(
        [4.0, 6.5, 7.75, 10.85, 11.0, 11.95, 13.25, 14.03, 15.75, 17.04])
    assert record["time_info"] == pytest.approx({"current_time": 17.04, "latency": 1.29, "total_gen_time": 8.62,
                                                 "overhead_time": 0.0})
    prefill_requests = [r for r in model.seen if r.prefill_only]
    assert len(prefill_requests) == 2 and all(r.max_new_tokens == 1 for r in prefill_requests)
    assert "Options are:\n(A): red" in prefill_requests[1].messages[-1]["content"]
    assert "(B): blue" not in prefill_requests[1].messages[-1]["content"]
    assert record["usage"]["prompt_tokens"][-1] == 200  # the final call stays last


def test_busy_model_skips_prefills_that_would_start_after_completion():
    # second inference call runs 7.75-18.85: past the options' arrival, so no prefill at all
    record, _ = _run([(100, 0, 10), (150, 100, 100), (200, 150, 5)])
    assert [s["kind"] for s in record["steps"]] == ["inference", "inference", "final"]


def test_a_prefill_running_at_completion_delays_the_final_call():
    # second inference 7.75-13.85 (6.1 s); one prefill of both lines 13.85-16.9 (3.05 s); final 16.9-18.19
    record, _ = _run([(100, 0, 10), (150, 100, 50), (300, 50, 0), (200, 190, 5)])
    assert [s["kind"] for s in record["steps"]] == ["inference", "inference", "prefill", "final"]
    assert record["time_info"]["overhead_time"] == pytest.approx(16.9 - 15.75)
    assert record["time_info"]["latency"] == pytest.approx(18.19 - 15.75)


def test_ua_spi_prefill_prompts_are_prefixes_of_the_final_prompt():
    model = ScriptedModel(rules=[("blue", "action inference. scattering")], default="The answer is (B).")
    controller = LiveMindController(model, prompt_format=make_format("UA-SPI"))
    solve_question(controller, ROW, TimingConfig(prefill_while_typing=True))
    final = model.calls[-1].messages
    for request in model.calls:
        if request.prefill_only:
            assert request.messages[:-1] == final[:-1]
            body = request.messages[-1]["content"]
            assert final[-1]["content"].startswith(body[: body.index("Options are:")])


def test_prefill_flag_checks(tmp_path):
    result, seconds = run_script("run_solver.py", ["--prefill_while_typing"], tmp_path)
    assert_rejected(result, seconds, tmp_path, "--prefill_while_typing needs --method livemind")
    result, seconds = run_script("run_solver.py", ["--use_lm", "--prefill_while_typing", "--options_arrival", "instant"], tmp_path)
    assert_rejected(result, seconds, tmp_path, "typed options")
