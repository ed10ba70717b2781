"""Command-line plumbing shared by ``run_solver.py`` and ``run_batch_solver.py``.

Everything that can be wrong with the input is checked here, before any model loads:
each problem becomes one line on stderr and exit code 2.  The scripts stay thin: parse,
``validate``, ``build_controller``, loop, write.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import faults
from .actions import ACTION_SETS, PARSE_RULES
from .controller import FINAL_ANSWERS, CoTController, LiveMindController
from .data import PROCEDURES, DataError, is_local_source, load_questions, select_questions, validate_data_path
from .formats import FORMATS, make_format
from .models import outage, registry
from .models.capabilities import capabilities
from .profiles import MEASURED, CostProfile, ProfileError
from .profiles import resolve as resolve_profile
from .prompts import PromptError, PromptSet, load_prompt_set
from .runfiles import RunFileError, library_versions
from .segment import GRANULARITIES, split

DEFAULT_MODEL = registry.DEFAULT_MODEL
DEFAULT_MAX_NEW_TOKENS = 512
DEFAULT_PARSE = "v1"


RUN_ONLY_KEYS = ("versions", "resume", "overwrite", "output_file", "concurrency", "max_outage", "retry_failed")
"""Flags that change how a run proceeds, not its results: left out of ``config_id``."""


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
    add("--use_lm", action="store_true", help="run LiveMind (default: the chain-of-thought baseline)")
    add("--assist_model", default=None, help="output model for collaborative inference (needs --use_lm)")
    add("--action_set", default="CAS", choices=sorted(ACTION_SETS), help="CAS or SAS (default CAS)")
    add("--output_file", default=None, help="output JSON (default output/mmlu_pro/<mode>/<run name>/all.json)")
    add("--num_questions", type=int, default=None, help="questions per category (default: all)")
    add("--data_path", default=None, help="MMLU-Pro parquet folder/file or hub id (default: bundled sample set)")
    add("--max_new_tokens", type=int, default=None,
        help=f"token limit per model call (default: per model -- 8192 for the paper's models -- else {DEFAULT_MAX_NEW_TOKENS})")
    add("--inference_max_new_tokens", type=int, default=None,
        help="token limit of inference-stage calls (default: per model, else --max_new_tokens)")
    add("--seed", type=int, default=42, help="seed for question selection and typing jitter")
    add("--selection", default="v1", choices=PROCEDURES,
        help="question selection: v1 = the paper's (whole-split shuffle, fixed category order; default), "
             "per-category = shuffle each category on its own")
    add("--prompts", default=None, help="TOML/JSON file replacing prompt texts")
    add("--prime_actions", default=None, action=argparse.BooleanOptionalAction,
        help="start inference replies with 'action ' (default: per model; on for the embedded model)")
    add("--constrain_actions", default=None, action=argparse.BooleanOptionalAction,
        help="with priming, force the reply to start with a valid action name (default: per model)")
    add("--prompt_format", default="v1", choices=sorted(FORMATS), help="prompt layout (default v1)")
    add("--granularity", default="sentence", choices=GRANULARITIES, help="segment size (default sentence)")
    add("--min_length", type=int, default=0, help="merge segments shorter than this many characters (v2: 10)")
    add("--final_answer", default="free", choices=FINAL_ANSWERS, help="free text or a constrained option letter")
    add("--parse", default=None, choices=PARSE_RULES,
        help="which inference replies are kept: v1 = the paper's rule, lenient = also malformed replies "
             "(default: per model; v1 for the paper's models)")
    add("--resume", action="store_true", help="continue an interrupted run from its .jsonl journal")
    add("--overwrite", action="store_true", help="replace an existing output file")


def add_timing_args(parser: argparse.ArgumentParser) -> None:
    """``--timing`` and ``--profiles`` (real-time solver): how calls are charged on the
    simulated timeline (see ``profiles.py`` and docs/timing.md)."""
    parser.add_argument("--timing", default=MEASURED, metavar="measured|PROFILE",
                        help="'measured': each call's wall time (default); PROFILE: its modelled time from a token-cost profile")
    parser.add_argument("--profiles", default=None, metavar="FILE",
                        help="TOML file of extra timing profiles (added to the packaged live_mind/profiles.toml)")


def timing_profile(args: argparse.Namespace) -> CostProfile | None:
    """The ``--timing`` profile (``None``: measured); ``UsageError`` if unknown or unreadable."""
    try:
        return resolve_profile(getattr(args, "timing", None), getattr(args, "profiles", None))
    except ProfileError as exc:
        raise UsageError(str(exc)) from None


def fail(message: str) -> int:
    """Print a one-line error and return exit code 2."""
    print(f"error: {message}".replace("\n", " "), file=sys.stderr)
    return 2


def default_output(args: argparse.Namespace, kind: str) -> Path:
    name = args.model.replace("-", "_").replace(".", "_")
    if args.use_lm:
        name += "_lm"
        if args.assist_model:
            name += "_" + args.assist_model.replace("-", "_").replace(".", "_")
    return Path("output") / "mmlu_pro" / kind / name / "all.json"


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


@dataclass
class Setup:
    """Everything validated, nothing loaded."""

    args: argparse.Namespace
    output: Path
    specs: dict[str, registry.ModelSpec]
    prompts: PromptSet
    config: dict[str, Any]
    profile: CostProfile | None = None


def validate(args: argparse.Namespace, kind: str, extra_checks: Callable[[argparse.Namespace], None] | None = None) -> Setup:
    """Check flags, files and models; raise ``UsageError`` with a one-line message."""
    if args.assist_model and not args.use_lm:
        raise UsageError("--assist_model needs --use_lm (collaborative inference is a LiveMind mode)")
    if args.num_questions is not None and args.num_questions <= 0:
        raise UsageError("--num_questions must be > 0")
    check_limits(args)
    problem = faults.problem(args)
    if problem:
        raise UsageError(problem)
    if extra_checks:
        extra_checks(args)
    profile = timing_profile(args)
    try:
        if args.data_path is not None and is_local_source(args.data_path):
            validate_data_path(args.data_path)
        prompts = load_prompt_set(args.prompts)
        specs = resolve_specs(args)
    except (DataError, PromptError, registry.ConfigError) as exc:
        raise UsageError(str(exc)) from None
    output = Path(args.output_file) if args.output_file else default_output(args, kind)
    check_output(output, args.resume, args.overwrite)
    config = run_config(args, kind, specs, prompts, profile)
    final = answering(specs)
    if getattr(args, "prefill_while_typing", False) and not capabilities(final).prefill_only:
        raise UsageError(f"--prefill_while_typing needs a backend with a prefix cache a prefill-only call can fill; "
                         f"{final.name} uses {final.backend}")
    check_constraint(args, specs, config)
    return Setup(args, output, specs, prompts, config, profile)


def check_limits(args: argparse.Namespace) -> None:
    """The typing speed, the token limits and the merge length, shared by the solvers and
    the live session."""
    if getattr(args, "typing_speed", 1.0) <= 0:
        raise UsageError("--typing_speed must be > 0 (seconds per character)")
    if args.max_new_tokens is not None and args.max_new_tokens <= 0:
        raise UsageError("--max_new_tokens must be > 0")
    if args.inference_max_new_tokens is not None and args.inference_max_new_tokens <= 0:
        raise UsageError("--inference_max_new_tokens must be > 0")
    if args.min_length < 0:
        raise UsageError("--min_length must be >= 0")


def answering(by_role: dict[str, Any]) -> Any:
    """The answering (output) model of a role -> model mapping: the assist model when there
    is one (collaborative inference), else the model; specs or loaded models alike."""
    return by_role.get("assist_model") or by_role["model"]


def check_constraint(args: argparse.Namespace, specs: dict[str, registry.ModelSpec], config: dict[str, Any]) -> None:
    """Constrained action names need a backend that supports ``lead_choices``."""
    if config["constrain_actions"] and args.use_lm and not capabilities(specs["model"]).lead_choices:
        raise UsageError(
            f"--constrain_actions needs a backend that can force a reply's opening; {args.model} uses {specs['model'].backend}"
        )
    # A vLLM streaming-input session only ever appends to a question's request, so the
    # question's calls must extend one another: the append-only layout.
    streaming = [spec.name for spec in specs.values() if spec.params.get("streaming_sessions")]
    if streaming and args.use_lm and getattr(args, "prompt_format", "UA-SPI") != "UA-SPI":
        raise UsageError(f"model '{streaming[0]}' runs vLLM streaming-input sessions, which need the append-only "
                         f"layout: add --prompt_format UA-SPI")


def resolve_specs(args: argparse.Namespace) -> dict[str, registry.ModelSpec]:
    """The model (and assist model) entries, checked as available; nothing is loaded.
    Raises ``registry.ConfigError``."""
    specs = {"model": registry.resolve(args.model, args.models)}
    if args.assist_model:
        specs["assist_model"] = registry.resolve(args.assist_model, args.models)
    for spec in specs.values():
        registry.check_available(spec)
    return specs


def run_config(args: argparse.Namespace, kind: str, specs: dict[str, registry.ModelSpec], prompts: PromptSet,
               profile: CostProfile | None = None) -> dict[str, Any]:
    """The resolved configuration saved beside the output (no secrets); ``profile`` is the
    already resolved ``--timing`` profile (None: measured)."""
    flags = {k: v for k, v in sorted(vars(args).items()) if k != "list_models"}
    config = {
        "script": kind,
        **flags,
        "prime_actions": resolved_priming(args, specs["model"]),
        "constrain_actions": resolved_constraint(args, specs["model"]),
        "max_new_tokens": resolved_max_new_tokens(args, specs),
        "inference_max_new_tokens": (args.inference_max_new_tokens or specs["model"].inference_max_new_tokens
                                     or args.max_new_tokens or specs["model"].max_new_tokens or DEFAULT_MAX_NEW_TOKENS),
        "parse": args.parse or specs["model"].parse or DEFAULT_PARSE,
        "model_config": {role: registry.public_config(spec) for role, spec in specs.items()},
        "prompt_texts": prompts.as_dict(),
        "timing_profile": profile.as_dict() if profile is not None else None,  # None: measured wall time
        "versions": library_versions(),
    }
    digest = hashlib.sha256(json.dumps({k: v for k, v in config.items() if k not in RUN_ONLY_KEYS},
                                       sort_keys=True, default=str).encode()).hexdigest()[:12]
    config["config_id"] = digest
    return config


def resolved_max_new_tokens(args: argparse.Namespace, specs: dict[str, registry.ModelSpec]) -> int:
    """Token limit of answering calls: the flag, else the answering model's entry."""
    return args.max_new_tokens or answering(specs).max_new_tokens or DEFAULT_MAX_NEW_TOKENS



def resolved_priming(args: argparse.Namespace, spec: registry.ModelSpec) -> bool:
    return spec.prime_actions if args.prime_actions is None else bool(args.prime_actions)


def resolved_constraint(args: argparse.Namespace, spec: registry.ModelSpec) -> bool:
    if args.constrain_actions is None:
        return bool(getattr(spec, "constrain_actions", False))
    return bool(args.constrain_actions)


def load_selected_questions(args: argparse.Namespace) -> list[dict[str, Any]]:
    try:
        rows = load_questions(args.data_path)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    return select_questions(rows, args.num_questions, seed=args.seed, procedure=args.selection)


def build_controller(setup: Setup, loaded: dict[str, Any]) -> LiveMindController | CoTController:
    """The controller for this run over already-loaded models."""
    args = setup.args
    segmenter = lambda text: split(text, args.granularity, args.min_length)  # noqa: E731
    if not args.use_lm:
        return CoTController(loaded["model"], setup.prompts, segmenter, setup.config["max_new_tokens"], args.final_answer)
    return LiveMindController(
        inference_model=loaded["model"],
        output_model=loaded.get("assist_model"),
        action_set_name=args.action_set,
        prompt_format=make_format(args.prompt_format, setup.prompts),
        segmenter=segmenter,
        prime_actions=setup.config["prime_actions"],
        constrain_actions=setup.config["constrain_actions"],
        max_new_tokens=setup.config["inference_max_new_tokens"],
        final_max_new_tokens=setup.config["max_new_tokens"],
        final_answer=args.final_answer,
        parse=setup.config["parse"],
        batched=setup.config["script"] == "batched",
    )


def load_models(setup: Setup, *, concurrency: int = 1, prefill: bool = False, latch: bool = True,
                **overrides: Any) -> dict[str, Any]:
    """Load each distinct model once (the same name twice shares one instance), each
    behind an outage guard (``models/outage.py``) with the run's ``--max_outage``
    (``latch``: stop for good once it is spent -- the solvers -- or not: the server).
    What a backend can do decides the rest (``capabilities``): ``prefill`` switches on
    the prefix cache of models that can keep one, one kept prefix per question in
    flight; ``concurrency > 1`` starts engines that can batch the requests in flight
    continuously in that mode (``async_engine``)."""
    loaded: dict[str, Any] = {}
    by_name: dict[str, Any] = {}
    budget = getattr(setup.args, "max_outage", outage.DEFAULT_MAX_OUTAGE)
    for role, spec in setup.specs.items():
        if spec.name not in by_name:
            caps, options = capabilities(spec), dict(overrides)
            if prefill and caps.prefix_cache:
                options.update(prefix_cache=True, prefix_cache_size=max(4, concurrency))
            if concurrency > 1 and caps.async_engine:
                options["async_engine"] = True
            by_name[spec.name] = outage.guard(registry.build(spec, **options), budget, latch=latch)
        loaded[role] = by_name[spec.name]
    return loaded


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
        questions = load_selected_questions(args)
        writer = RunWriter.open(setup.output, setup.config, args.resume, getattr(args, "retry_failed", False))
    except (UsageError, RunFileError) as exc:
        return fail(str(exc))
    if writer.repaired:
        print(f"note: {writer.repaired}", file=sys.stderr)
    return Started(setup, questions, writer)
