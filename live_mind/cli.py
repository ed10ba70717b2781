"""The command line every front end stands on: both solvers, the live session
(``live_cli.py``) and the server (``serve/main.py``); neither of the last two imports
the other.

The shared flags are defined here once (``add_common_args``, ``add_session_args``,
``add_timing_args``), and everything that can be wrong with the input is checked by the
one ``validate``, before any model loads: each problem becomes one line on stderr and
exit code 2.  ``validate`` resolves the run's ``RunConfig`` (``runconfig.py``); models
and controllers are built from it (``loading.py``, re-exported here).  The scripts stay
thin: parse, ``validate``, ``load_models``/``build_controller``, loop, write.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import faults, runconfig
from .actions import ACTION_SETS, PARSE_RULES
from .answer import ANSWER_RULES, PAPER_RULE
from .clock import check_typing_speed
from .data import PROCEDURES, DataError
from .formats import FORMATS
from .loading import build_controller, build_session, construction_options, load_models
from .methods import registry as methods
from .methods.base import FINAL_ANSWERS
from .models import registry
from .models.capabilities import capabilities
from .profiles import MEASURED, ProfileError
from .prompts import PromptError, load_prompt_set
from .runconfig import (
    DEFAULT_MAX_NEW_TOKENS,
    RUN_ONLY_KEYS,
    RunConfig,
    Setup,
    answering,
    resolved_constraint,
    resolved_max_new_tokens,
    resolved_priming,
    run_config,
)
from .runfiles import RunFileError
from .schedule import SCHEDULES
from .segment import GRANULARITIES
from .tasks.base import DEFAULT_TASK
from .tasks.resolve import resolve_task

__all__ = [  # the loading and resolving steps, re-exported for the scripts
    "DEFAULT_MAX_NEW_TOKENS", "RUN_ONLY_KEYS", "RunConfig", "Setup", "answering", "build_controller", "build_session",
    "construction_options", "load_models", "resolved_constraint", "resolved_max_new_tokens", "resolved_priming",
    "run_config",
]

DEFAULT_MODEL = registry.DEFAULT_MODEL
NOT_LIVE = (methods.ALIAS_FLAG, "num_questions", "question_offset", "data_path", "seed", "selection", "resume", "overwrite", "output_file")
"""Solver flags without meaning in a live session (one question, typed now)."""
SESSION_KINDS = ("live", "serve")
"""Front ends of one typed question at a time (``live_session.py``, ``serve.py``)."""


class UsageError(ValueError):
    """Bad input: reported as one line, exit code 2, before any model loads."""


def add_common_args(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """Flags of the paper's scripts plus this toolkit's own (without the ``skip`` ones)."""

    def add(flag: str, **kwargs: Any) -> None:
        if flag.lstrip("-") not in skip:
            parser.add_argument(flag, **kwargs)

    add("--model", default=DEFAULT_MODEL, help=f"model name from the model configuration (default {DEFAULT_MODEL})")
    add("--models", default=None, help="model configuration TOML (default: packaged models.toml or $LIVEMIND_MODELS)")
    add("--list_models", action="store_true", help="print the configured models and exit")
    add("--method", default=None, metavar="NAME",
        help="the method: livemind, cot (default: the chain-of-thought baseline), predgen, or module:Factory (docs/methods.md)")
    add(f"--{methods.ALIAS_FLAG}", action="store_true", help="the paper's flag: the same as --method livemind")
    add("--assist_model", default=None, help="output model for collaborative inference (LiveMind)")
    add("--action_set", default=None, choices=sorted(ACTION_SETS), help="CAS or SAS (default: per model, else CAS as in the paper)")
    add("--output_file", default=None, help="output JSON (default output/mmlu_pro/<mode>/<run name>/all.json)")
    add("--num_questions", type=int, default=None, help="questions per category (default: all)")
    add("--question_offset", type=int, default=0, metavar="K",
        help="skip the first K selected questions of each category (a held-out slice: --num_questions 2 --question_offset 10 "
             "gives the 11th and 12th, none of the --num_questions 10 set; default 0)")
    add("--data_path", default=None, help="MMLU-Pro parquet folder/file or hub id (default: bundled sample set); the task's data")
    add("--task", default=None, metavar="NAME|FILE", help="mmlu-pro (default), mmlu, or a TOML task file (docs/tasks.md)")
    add("--max_new_tokens", type=int, default=None,
        help=f"token limit per model call (default: per model -- 8192 for the paper's models -- else {DEFAULT_MAX_NEW_TOKENS})")
    add("--inference_max_new_tokens", type=int, default=None,
        help="token limit of inference-stage calls (default: per model, else --max_new_tokens)")
    add("--seed", type=int, default=42, help="seed for question selection and typing jitter")
    add("--selection", default="v1", choices=PROCEDURES,
        help="question selection: v1 = the paper's (whole-split shuffle, fixed category order; default), "
             "per-category = shuffle each category on its own")
    add("--prompts", default=None,
        help="TOML/JSON file replacing prompt texts (default: the model entry's, else the toolkit's; 'default': the toolkit's)")
    add("--prime_actions", default=None, action=argparse.BooleanOptionalAction,
        help="start inference replies with 'action ' (default: per model; on for the embedded model)")
    add("--constrain_actions", default=None, action=argparse.BooleanOptionalAction,
        help="with priming, force the reply to start with a valid action name (default: per model)")
    add("--prompt_format", default=None, choices=sorted(FORMATS), help="prompt layout (default: per model, else v1)")
    add("--granularity", default=None, choices=GRANULARITIES, help="segment size (default: per model, else sentence)")
    add("--min_length", type=int, default=0, help="merge segments shorter than this many characters (v2: 10)")
    add("--final_answer", default="free", choices=FINAL_ANSWERS, help="free text or a constrained option letter")
    add("--parse", default=None, choices=PARSE_RULES,
        help="which inference replies are kept: v1 = the paper's rule, lenient = also malformed replies "
             "(default: per model; v1 for the paper's models)")
    add("--answer_rule", default=None, choices=ANSWER_RULES,
        help="how the final answer's letter is read: paper = the paper's 'answer is (X)' (default: per model, else paper); extended = also "
             "\\boxed{X}, 'Answer: X', '**(X)**' (answer.py); each record names the rule that read it")
    add("--resume", action="store_true", help="continue an interrupted run from its .jsonl journal")
    add("--overwrite", action="store_true", help="replace an existing output file")


def add_session_args(p: argparse.ArgumentParser) -> None:
    """The flags and defaults of a live session (the terminal's and the server's) on top
    of the solvers': the UA-SPI layout, the ``latest`` schedule, prefix KV reuse on."""
    add = p.add_argument
    add("--schedule", choices=SCHEDULES, help="latest (default) or every")
    add("--cancel_on_complete", action="store_true", help="stop the running inference call when the input completes")
    add("--prefix_cache", default=True, action=argparse.BooleanOptionalAction,
        help="transformers backend: reuse the KV cache of the previous call (default on)")
    faults.add_max_outage(p, "the live session stops (exit 75); the server answers that call with a backend_unavailable "
                             "error and probes the backend again on the next one")
    p.set_defaults(method="livemind", prompt_format="UA-SPI", schedule="latest")


def add_timing_args(parser: argparse.ArgumentParser) -> None:
    """``--timing`` and ``--profiles`` (real-time solver): how calls are charged on the
    simulated timeline (see ``profiles.py`` and docs/timing.md)."""
    parser.add_argument("--timing", default=MEASURED, metavar="measured|model|PROFILE",
                        help="'measured': each call's wall time (default); PROFILE: its modelled time from a token-cost profile; "
                             "'model': each model's calls by the profile its entry names (collaborative runs charge each model its own)")
    parser.add_argument("--profiles", default=None, metavar="FILE",
                        help="TOML file of extra timing profiles (added to the packaged live_mind/profiles.toml)")


def fail(message: str) -> int:
    """Print a one-line error and return exit code 2."""
    print(f"error: {message}".replace("\n", " "), file=sys.stderr)
    return 2


def default_output(args: argparse.Namespace, kind: str) -> Path:
    name = args.model.replace("-", "_").replace(".", "_")
    method = method_of(args)
    if method == "livemind":
        name += "_lm"
        if args.assist_model:
            name += "_" + args.assist_model.replace("-", "_").replace(".", "_")
    elif method != methods.DEFAULT_METHOD:
        name += "_" + method.replace(":", "_").replace(".", "_")
    task = Path(args.task or DEFAULT_TASK).stem.replace("-", "_")
    return Path("output") / task / kind / name / "all.json"


def check_output(path: Path, resume: bool, overwrite: bool) -> None:
    if path.suffix != ".json":
        raise UsageError(f"--output_file must end in .json: {path}")
    folder = path.parent if str(path.parent) else Path(".")
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"output folder cannot be created: {probe} is not a folder")
    if not _can_create_files(probe):
        raise UsageError(f"output folder is not writable: {probe}")
    if resume and overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    if path.exists() and not (resume or overwrite):
        raise UsageError(f"{path} exists; pass --resume to continue it or --overwrite to replace it")
    journal = path.with_suffix(".jsonl")
    if journal.is_file() and journal.stat().st_size > 0 and not (resume or overwrite):
        raise UsageError(f"{journal} holds an interrupted run; pass --resume to continue it or --overwrite to start over")


def _can_create_files(folder: Path) -> bool:
    """Whether a file can really be created in ``folder``.

    ``os.access`` is not enough: for root it says yes to folders of pseudo file
    systems such as ``/proc``, where no file can be created; creating (and at once
    deleting) an anonymous file is the test that holds for every user, root included.
    """
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def method_of(args: argparse.Namespace) -> str:
    """The method the flags ask for (``--method``, its alias, else the baseline), checked:
    ``UsageError`` for an unknown name or a contradiction."""
    try:
        name = methods.chosen(vars(args).get("method"), bool(vars(args).get(methods.ALIAS_FLAG)))
        methods.info(name)
    except methods.MethodError as exc:
        raise UsageError(str(exc)) from None
    return name


def validate(args: argparse.Namespace, kind: str, extra_checks: Callable[[argparse.Namespace], None] | None = None) -> Setup:
    """The one validation of every front end (``kind``: ``time_info``, ``batched``,
    ``live`` or ``serve``): check the flags, files and models and resolve the run's
    ``RunConfig``; raise ``UsageError`` with a one-line message.  Nothing loads."""
    method = method_of(args)
    if args.assist_model and method != "livemind":
        raise UsageError("--assist_model needs --method livemind (collaborative inference is a LiveMind mode)")
    check_limits(args)
    if extra_checks:
        extra_checks(args)
    session = kind in SESSION_KINDS
    try:
        # A session has no data of its own; with --task, the live session's --replay names the task's data file.
        task = (resolve_task(args.task, vars(args).get("replay") if args.task else None, need_data=False) if session
                else resolve_task(args.task, args.data_path))
        specs = resolve_specs(args)
        prompts = task.prompts(load_prompt_set(prompts_file(args, specs)))
        run = runconfig.resolve(args, kind, specs, prompts, task)
    except (DataError, PromptError, registry.ConfigError, ProfileError) as exc:
        raise UsageError(str(exc)) from None
    check_run(run, specs)
    if session and not methods.info(run.method).live:
        raise UsageError(f"--method {run.method} runs in the solvers only (it has no two-stage form for the wall clock)")
    if kind == "batched" and run.method not in methods.PAPER_METHODS:
        raise UsageError(f"--method {run.method} runs in run_solver.py; the lockstep batched protocol is LiveMind's and CoT's")
    if session:
        output = Path(run.output_file) if run.output_file else None
        if output is not None and output.suffix != ".json":
            raise UsageError(f"--output_file must end in .json: {output}")
    else:
        output = Path(args.output_file) if args.output_file else default_output(args, kind)
        check_output(output, args.resume, args.overwrite)
    return Setup(args, output, specs, prompts, run)


def check_limits(args: argparse.Namespace) -> None:
    """The token limits and the merge length, flags every script has, checked before
    they are resolved (a 0 would otherwise fall back to the model entry's)."""
    if args.max_new_tokens is not None and args.max_new_tokens <= 0:
        raise UsageError("--max_new_tokens must be > 0")
    if args.inference_max_new_tokens is not None and args.inference_max_new_tokens <= 0:
        raise UsageError("--inference_max_new_tokens must be > 0")
    if args.min_length < 0:
        raise UsageError("--min_length must be >= 0")


def check_run(run: RunConfig, specs: dict[str, registry.ModelSpec]) -> None:
    """The rules on the resolved settings, one check each, whatever script set them."""
    try:
        check_typing_speed(run.typing_speed)
    except ValueError as exc:
        raise UsageError(f"--{exc}") from None
    if run.num_questions is not None and run.num_questions <= 0:
        raise UsageError("--num_questions must be > 0")
    if run.question_offset < 0:
        raise UsageError("--question_offset must be >= 0")
    problem = faults.problem(run)
    if problem:
        raise UsageError(problem)
    final = answering(specs)
    if run.prefill_while_typing and not capabilities(final).prefill_only:
        raise UsageError(f"--prefill_while_typing needs a backend with a prefix cache a prefill-only call can fill; "
                         f"{final.name} uses {final.backend}")
    check_constraint(run, specs)
    for spec in specs.values():
        if (need := methods.missing_capability(run.method, capabilities(spec))) is not None:
            raise UsageError(f"--method {run.method} needs a backend with {need}; {spec.name} uses {spec.backend}")
    if run.task is not None and not run.task.has_options and run.final_answer != "free":
        raise UsageError(f"--final_answer {run.final_answer} needs options; task {run.task.name} has free-form answers")


def check_constraint(run: RunConfig, specs: dict[str, registry.ModelSpec]) -> None:
    """Constrained action names need a backend that supports ``lead_choices``."""
    if run.constrain_actions and run.method == "livemind" and not capabilities(specs["model"]).lead_choices:
        raise UsageError(
            f"--constrain_actions needs a backend that can force a reply's opening; {run.model} uses {specs['model'].backend}"
        )
    # A vLLM streaming-input session only ever appends to a question's request, so the
    # question's calls must extend one another: the append-only layout.
    streaming = [spec.name for spec in specs.values() if spec.params.get("streaming_sessions")]
    if streaming and run.method == "livemind" and run.prompt_format != "UA-SPI":
        raise UsageError(f"model '{streaming[0]}' runs vLLM streaming-input sessions, which need the append-only "
                         f"layout: add --prompt_format UA-SPI")


DEFAULT_PROMPTS = "default"
"""``--prompts default``: the toolkit's own texts, even where the model entry names a prompts file."""


def prompts_file(args: argparse.Namespace, specs: dict[str, registry.ModelSpec]) -> Any:
    """The prompts file of the run: ``--prompts``, else the (inference) model entry's, else none."""
    if args.prompts == DEFAULT_PROMPTS:
        return None
    return args.prompts or registry.prompts_path(specs["model"])


def resolve_specs(args: argparse.Namespace) -> dict[str, registry.ModelSpec]:
    """The model (and assist model) entries, checked as available; nothing is loaded.
    Raises ``registry.ConfigError``."""
    specs = {"model": registry.resolve(args.model, args.models)}
    if args.assist_model:
        specs["assist_model"] = registry.resolve(args.assist_model, args.models)
    for spec in specs.values():
        registry.check_available(spec)
    return specs


def skip_per_category(rows: list[dict[str, Any]], offset: int) -> list[dict[str, Any]]:
    """``rows`` without the first ``offset`` of each category (selection order kept)."""
    seen: dict[Any, int] = {}
    kept = []
    for row in rows:
        index = seen[row.get("category")] = seen.get(row.get("category"), -1) + 1
        if index >= offset:
            kept.append(row)
    return kept


def load_selected_questions(run: RunConfig) -> list[dict[str, Any]]:
    """The run's questions: the task's rows (``--task``, default MMLU-Pro), selected."""
    offset = run.question_offset
    try:
        rows = run.task.questions(None if run.num_questions is None else run.num_questions + offset, run.seed, run.selection)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    if offset:
        rows = skip_per_category(rows, offset)
    if run.answer_rule != PAPER_RULE:  # the records carry the rule, so every analysis scores them by it
        rows = [{**row, "answer_rule": run.answer_rule} for row in rows]
    return rows


@dataclass
class Started:
    """A validated run with its questions and its journal open (nothing loaded yet)."""

    setup: Setup
    questions: list[dict[str, Any]]
    writer: Any  # runfiles.RunWriter

    @property
    def todo(self) -> list[dict[str, Any]]:
        """The selected questions the journal does not hold yet (all, unless resuming)."""
        done = self.writer.done_ids()
        return [q for q in self.questions if q["question_id"] not in done]


def list_models(args: argparse.Namespace) -> int | None:
    """With ``--list_models``: print the configured models and return the exit code."""
    if not args.list_models:
        return None
    try:
        print(registry.list_models_text(args.models))
    except registry.ConfigError as exc:
        return fail(str(exc))
    return 0


def start_run(args: argparse.Namespace, kind: str, extra_checks: Callable[[argparse.Namespace], None]) -> Started | int:
    """Logging, ``--list_models``, validation, question selection and the journal, shared by
    both solvers: returns the started run, or the exit code to stop with (0 or 2)."""
    from .runfiles import RunWriter

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if (code := list_models(args)) is not None:
        return code
    try:
        setup = validate(args, kind, extra_checks)
        questions = load_selected_questions(setup.run)
        writer = RunWriter.open(setup.output, setup.config, setup.run.resume, setup.run.retry_failed)
    except (UsageError, RunFileError) as exc:
        return fail(str(exc))
    if writer.repaired:
        print(f"note: {writer.repaired}", file=sys.stderr)
    return Started(setup, questions, writer)
