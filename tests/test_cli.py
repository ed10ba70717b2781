"""The solvers' shared command line (``cli.py``) and the Ctrl-C helper both solvers stop
with (``interrupt.py``): checks before any model loads, capability-based refusals, the
answering model, the run configuration and the resume hint."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from conftest import require_module

import run_solver
from live_mind import cli, runconfig
from live_mind.interrupt import GracefulStop, stopped_early
from live_mind.models import registry
from live_mind.prompts import PromptSet

SCRIPTED = str(Path(__file__).parent / "fixtures" / "scripted_models.toml")
REMOTE = """[models.remote]
backend = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "m"
"""


def _args(*argv: str):
    return run_solver.parse_args(["--models", SCRIPTED, "--model", "scripted-fast", *argv])


@pytest.mark.parametrize("flag, value, message", [
    ("--max_new_tokens", "0", "--max_new_tokens must be > 0"),
    ("--inference_max_new_tokens", "-1", "--inference_max_new_tokens must be > 0"),
    ("--min_length", "-2", "--min_length must be >= 0"),
])
def test_limits_are_checked_once_for_every_script(flag, value, message):
    with pytest.raises(cli.UsageError, match=message):
        cli.check_limits(_args(flag, value))
    from live_mind import live_cli

    with pytest.raises(cli.UsageError, match=message):
        cli.validate(live_cli.parse_args(["--models", SCRIPTED, "--model", "scripted-fast", flag, value]), "live")


def test_the_answering_model_is_the_assist_model_when_there_is_one():
    assert cli.answering({"model": "big"}) == "big"
    assert cli.answering({"model": "big", "assist_model": "small"}) == "small"


def test_the_timing_profile_is_resolved_once_per_validation(tmp_path, monkeypatch):
    calls = []
    real = runconfig.resolve_profile
    monkeypatch.setattr(runconfig, "resolve_profile", lambda *a: calls.append(a) or real(*a))
    setup = cli.validate(_args("--timing", "paper-llama-3-8b", "--output_file", str(tmp_path / "x.json")), "time_info")
    assert len(calls) == 1
    assert setup.config["timing_profile"] == setup.profile.as_dict() and setup.config["timing"] == "paper-llama-3-8b"


def test_the_config_id_ignores_where_the_run_is_written():
    specs = {"model": registry.resolve("scripted-fast", SCRIPTED)}
    one = cli.run_config(_args("--output_file", "a/all.json"), "time_info", specs, PromptSet())
    two = cli.run_config(_args("--output_file", "b/all.json", "--overwrite"), "time_info", specs, PromptSet())
    other = cli.run_config(_args("--seed", "1"), "time_info", specs, PromptSet())
    assert one["config_id"] == two["config_id"] != other["config_id"]



def _config(*argv: str, answer_profile=None, profile=None):
    """The default run's configuration (the packaged default entry) under ``argv``."""
    args = run_solver.parse_args(list(argv))
    return args, cli.run_config(args, "time_info", {"model": registry.resolve("smollm2-135m")}, PromptSet(),
                                profile, answer_profile)


def test_a_configuration_has_the_same_config_id_on_every_machine_and_version():
    """``config_id`` names a configuration across machines and toolkit versions, so that a
    resumed or compared run is the same one: these values change only when the default
    configuration, the prompts or the hashing change -- on purpose, with the reason."""
    _, plain = _config()
    _, livemind = _config("--use_lm")
    _, extended = _config("--answer_rule", "extended")
    assert (plain["config_id"], livemind["config_id"], extended["config_id"]) == ("2f3adc150227", "67ac063dc0f1", "450b17da3773")
    assert "answer_rule" not in plain and extended["answer_rule"] == "extended"
    assert {"prompt_texts", "versions", "timing_profile", "model_config", "script"} <= set(plain)
    assert plain["use_lm"] is False and livemind["use_lm"] is True and "method" not in plain  # the paper's flag
    args, _ = _config()
    args.data_path = Path("questions.jsonl")  # a value JSON cannot write is hashed as its text
    assert cli.run_config(args, "time_info", {"model": registry.resolve("smollm2-135m")},
                          PromptSet())["config_id"] == _config("--data_path", "questions.jsonl")[1]["config_id"]
    assert _config("--question_offset", "0")[1]["config_id"] == plain["config_id"] != _config("--question_offset", "2")[1]["config_id"]


def test_the_answering_profile_is_saved_only_when_it_differs():
    from live_mind.profiles import resolve as resolve_profile

    big, small = resolve_profile("paper-llama-3-70b", None), resolve_profile("paper-llama-3-8b", None)
    _, both = _config(profile=big, answer_profile=small)
    _, same = _config(profile=big, answer_profile=big)
    _, one = _config(profile=big)
    assert both["answer_timing_profile"] == small.as_dict() and both["timing_profile"] == big.as_dict()
    assert "answer_timing_profile" not in same and "answer_timing_profile" not in one
    assert same["config_id"] == one["config_id"] != both["config_id"]


def test_an_entry_chooses_its_answer_rule_and_settings_and_a_flag_overrides_them():
    qwen = {"model": registry.resolve("qwen2.5-coder-1.5b")}
    plain = {"model": registry.resolve("scripted-fast", SCRIPTED)}
    assert runconfig.resolved_answer_rule(_args(), qwen) == "extended"
    assert runconfig.resolved_answer_rule(_args("--answer_rule", "paper"), qwen) == "paper"
    assert runconfig.resolved_answer_rule(_args(), plain) == "paper"
    assert runconfig.resolved_answer_rule(_args("--answer_rule", "extended"), plain) == "extended"
    assert runconfig.resolved_setting(_args(), qwen, "action_set") == "SAS"
    assert runconfig.resolved_setting(_args("--action_set", "CAS"), qwen, "action_set") == "CAS"
    assert runconfig.resolved_setting(_args(), plain, "action_set") == "CAS"

def test_options_a_backend_cannot_serve_are_refused_by_capability(tmp_path):
    require_module("openai", "openai is not installed (pip install '.[openai]')")
    models = tmp_path / "models.toml"
    models.write_text(REMOTE)
    base = ["--models", str(models), "--model", "remote", "--use_lm", "--output_file", str(tmp_path / "o.json")]
    with pytest.raises(cli.UsageError, match="force a reply's opening"):
        cli.validate(run_solver.parse_args([*base, "--constrain_actions"]), "time_info")
    with pytest.raises(cli.UsageError, match="prefill-only call"):
        cli.validate(run_solver.parse_args([*base, "--no-constrain_actions", "--prefill_while_typing"]), "time_info")
    assert cli.validate(run_solver.parse_args([*base, "--no-constrain_actions"]), "time_info").specs["model"].name == "remote"


def test_default_output_names_the_mode_and_models():
    args = _args("--use_lm", "--assist_model", "scripted-slow")
    assert cli.default_output(args, "time_info") == Path("output/mmlu_pro/time_info/scripted_fast_lm_scripted_slow/all.json")
    assert cli.default_output(_args(), "batched") == Path("output/mmlu_pro/batched/scripted_fast/all.json")


# --------------------------------------------------------------------------- Ctrl-C


def test_the_first_ctrl_c_asks_to_stop_the_second_aborts(capsys):
    before = signal.getsignal(signal.SIGINT)
    with GracefulStop("batch") as stop:
        assert signal.getsignal(signal.SIGINT) is stop and not stop.requested
        stop(signal.SIGINT, None)
        assert stop.requested and "finishing the current batch" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            stop(signal.SIGINT, None)
    assert signal.getsignal(signal.SIGINT) is before


def test_the_resume_hint_only_after_an_interrupted_run(capsys):
    stop = GracefulStop("question")
    output = Path("out/all.json")
    assert stopped_early(stop, 3, 10, output) is None  # not interrupted
    stop.requested = True
    assert stopped_early(stop, 10, 10, output) is None  # interrupted after the last question: finished
    assert stopped_early(stop, 3, 10, output) == 130
    err = capsys.readouterr().err
    assert "stopped after 3/10 questions" in err and "out/all.jsonl" in err and "--resume" in err


def test_every_flag_takes_both_spellings():
    dashed = _args("--max-new-tokens", "5", "--no-prime-actions", "--typing-speed", "0.5")
    plain = _args("--max_new_tokens", "5", "--no-prime_actions", "--typing_speed", "0.5")
    assert vars(dashed) == vars(plain) and plain.max_new_tokens == 5 and plain.prime_actions is False


def test_the_controller_parses_as_the_scripts_do_by_default():
    from live_mind.actions import DEFAULT_PARSE
    from live_mind.methods.livemind import LiveMindController
    from live_mind.models.scripted import ScriptedModel

    assert LiveMindController(ScriptedModel()).parse == DEFAULT_PARSE == "v1"
    setup = cli.validate(_args("--use_lm", "--output_file", "/tmp/unused-parse-default.json", "--overwrite"), "time_info")
    assert setup.run.parse == "v1"


def test_the_run_config_is_resolved_once_and_frozen(tmp_path):
    setup = cli.validate(_args("--concurrency", "3", "--timing", "paper-llama-3-8b", "--output_file", str(tmp_path / "x.json")),
                         "time_info")
    run = setup.run
    assert run.concurrency == 3 and run.max_new_tokens == cli.DEFAULT_MAX_NEW_TOKENS and run.profile is not None
    assert run.config_id == setup.config["config_id"] and dict(run.saved) == setup.config
    with pytest.raises(Exception):
        run.concurrency = 1  # frozen: nothing changes a setting after validation
    with pytest.raises(TypeError):
        run.saved["concurrency"] = 1  # nor the configuration saved beside the output
    assert setup.config["concurrency"] == 3


def test_every_script_and_benchmark_parser_takes_both_spellings():
    """Every entry point builds its parser with ``flags.ArgumentParser``."""
    import ast

    root = Path(__file__).resolve().parents[1]
    files = [*root.glob("*.py"), *root.glob("benchmarks/*.py"), *root.glob("scripts/*.py"), *root.glob("live_mind/**/*.py")]
    plain = []
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "ArgumentParser" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "argparse":
                plain.append(f"{file.relative_to(root)}:{node.lineno}")
    assert not plain, f"argparse.ArgumentParser instead of flags.ArgumentParser: {plain}"
    from live_mind import live_cli
    from live_mind.serve import main as serve_main

    assert live_cli.parse_args(["--list-models"]).list_models and serve_main.parse_args(["--list-models"]).list_models


def test_the_run_config_takes_the_flags_over_the_entry_and_keeps_script_task_and_profiles(tmp_path):
    profiles = tmp_path / "profiles.toml"
    profiles.write_text('[profiles.mine]\ndescription = "d"\nsource = "s"\nfixed = 0.5\nuncached = 0.001\ncached = 0\ncompletion = 0.02\n')
    out = ["--output_file", str(tmp_path / "x.json")]
    plain = cli.validate(_args(*out), "time_info").run
    assert plain.script == "time_info" and plain.prime_actions is False and plain.constrain_actions is False
    run = cli.validate(_args("--prime_actions", "--task", str(Path(__file__).parent / "fixtures" / "quiz_task.toml"),
                             "--data_path", str(Path(__file__).parent / "fixtures" / "quiz.jsonl"),
                             "--timing", "mine", "--profiles", str(profiles), *out), "time_info").run
    assert run.prime_actions is True and run.task is not None and run.task.name == "quiz"
    assert run.profile is not None and run.profile.name == "mine" and run.profile.fixed == 0.5
    models = tmp_path / "models.toml"
    models.write_text('[models.primed]\nbackend = "scripted"\nprime_actions = true\nconstrain_actions = true\n')
    entry = cli.validate(run_solver.parse_args(["--models", str(models), "--model", "primed", *out]), "time_info").run
    assert entry.prime_actions is True and entry.constrain_actions is True  # the entry's, with no flag
    flagged = cli.validate(run_solver.parse_args(["--models", str(models), "--model", "primed", "--no-prime_actions",
                                                  "--no-constrain_actions", *out]), "time_info").run
    assert flagged.prime_actions is False and flagged.constrain_actions is False


def test_the_saved_configuration_names_a_task_only_when_it_is_not_the_default(tmp_path):
    out = ["--output_file", str(tmp_path / "x.json")]
    for task in ([], ["--task", "mmlu-pro"]):
        saved = cli.validate(_args(*task, *out), "time_info").config
        assert "task" not in saved and "list_models" not in saved, task  # configs (and config_id) as before tasks
        assert "data_path" in saved and saved["data_path"] is None and "constrain_actions" in saved
    quiz = str(Path(__file__).parent / "fixtures" / "quiz_task.toml")
    saved = cli.validate(_args("--task", quiz, "--data_path", str(Path(__file__).parent / "fixtures" / "quiz.jsonl"), *out),
                         "time_info").config
    assert saved["task"] == quiz
