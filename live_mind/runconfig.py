"""One run's settings, resolved once: ``RunConfig`` (flag > model entry > default).

Every script (both solvers, the live session, the server) turns its parsed flags into one
frozen ``RunConfig`` in ``cli.validate``, before any model loads, and from then on reads
settings only from it: the token limits are already resolved (never ``None``), the parse
rule and the priming are the model entry's when no flag set them, the timing profile is
loaded, and ``config_id`` names the configuration.  The dictionary saved beside every
output (``saved``, with library versions and prompt texts) is the same as before this
class existed, so ``config_id`` and every record stay byte-identical.

Adding a setting: add the flag to the script (or to ``cli.add_common_args`` when every
script has it) and a field with its default here; ``resolve`` fills every plain field
from the flag of the same name, or keeps the field's default when a script has no such
flag.  Flags that change how a run proceeds but not its answers go in ``RUN_ONLY_KEYS``
(left out of ``config_id``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .actions import DEFAULT_PARSE
from .answer import PAPER_RULE
from .clock import PAPER_SECONDS_PER_CHAR
from .methods import registry as methods
from .models import registry
from .models.outage import DEFAULT_MAX_OUTAGE
from .profiles import MEASURED, PER_MODEL, CostProfile, ProfileError
from .profiles import resolve as resolve_profile
from .prompts import PromptSet
from .runfiles import library_versions
from .tasks.base import DEFAULT_TASK, Task

DEFAULT_MAX_NEW_TOKENS = 512
RUN_ONLY_KEYS = ("versions", "resume", "overwrite", "output_file", "concurrency", "max_outage", "retry_failed")
"""Flags that change how a run proceeds, not its results: left out of ``config_id``."""


@dataclass(frozen=True)
class RunConfig:
    """The resolved settings of one run (see the module notes); read, never changed."""

    script: str
    """What runs: ``time_info`` (real-time solver), ``batched``, ``live`` or ``serve``."""
    model: str
    assist_model: str | None = None
    method: str = "cot"
    """The method (``methods/registry.py``): ``--method``, its alias, else the CoT baseline."""
    action_set: str = "CAS"
    prompt_format: str = "v1"
    granularity: str = "sentence"
    min_length: int = 0
    final_answer: str = "free"
    answer_rule: str = PAPER_RULE
    """How the final answer's letter is read (``answer.ANSWER_RULES``; the paper's by default)."""
    seed: int = 42
    selection: str = "v1"
    """Question selection procedure (``data.PROCEDURES``; the paper's: v1)."""
    typing_speed: float = PAPER_SECONDS_PER_CHAR
    typing_jitter: float = 0.0
    options_arrival: str = "typed"
    schedule: str = "every"
    cancel_on_complete: bool = False
    concurrency: int = 1
    """Questions in flight (real-time solver's ``--concurrency``)."""
    batch_size: int = 128
    """Questions per lockstep batch (batched solver)."""
    max_outage: float = DEFAULT_MAX_OUTAGE
    prefill_while_typing: bool = False
    num_questions: int | None = None
    question_offset: int = 0
    """Selected questions skipped at the start of each category (a held-out slice)."""
    output_file: str | None = None
    resume: bool = False
    retry_failed: bool = False
    timing: str = MEASURED
    # resolved from flag > model entry > default (``resolve``)
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    """Token limit of answering calls (final answer, CoT baseline)."""
    inference_max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    parse: str = DEFAULT_PARSE
    prime_actions: bool = False
    constrain_actions: bool = False
    profile: CostProfile | None = None
    """The ``--timing`` profile (of the inference model under ``--timing model``); ``None``:
    measured wall time."""
    answer_profile: CostProfile | None = None
    """``--timing model``: the answering model's own profile (collaborative inference);
    else the same as ``profile``."""
    task: Task | None = None
    """The ``--task`` (``tasks/``): its data, selection, prompts and scoring; the default is MMLU-Pro."""
    config_id: str = ""
    saved: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The configuration saved beside the output (read-only)."""

    @property
    def batched(self) -> bool:
        """The batched protocol (lockstep questions, ``run_batch_solver.py``)."""
        return self.script == "batched"


_RESOLVED = {"script", "method", "max_new_tokens", "inference_max_new_tokens", "parse", "prime_actions", "constrain_actions",
             "profile", "answer_profile", "task", "config_id", "saved"}


def answering(by_role: dict[str, Any]) -> Any:
    """The answering (output) model of a role -> model mapping: the assist model when there
    is one (collaborative inference), else the model; specs or loaded models alike."""
    return by_role.get("assist_model") or by_role["model"]


def resolved_max_new_tokens(args: argparse.Namespace, specs: dict[str, registry.ModelSpec]) -> int:
    """Token limit of answering calls: the flag, else the answering model's entry."""
    return args.max_new_tokens or answering(specs).max_new_tokens or DEFAULT_MAX_NEW_TOKENS


PAPER_SETTINGS = {"action_set": "CAS", "prompt_format": "v1", "granularity": "sentence"}
"""LiveMind settings a model entry may choose for its model, with the paper's values."""


def resolved_setting(args: argparse.Namespace, specs: dict[str, registry.ModelSpec], key: str) -> str:
    """A LiveMind setting: the flag, else the (inference) model entry's, else the paper's."""
    return vars(args).get(key) or specs["model"].defaults.get(key) or PAPER_SETTINGS[key]


def resolved_answer_rule(args: argparse.Namespace, specs: dict[str, registry.ModelSpec]) -> str:
    """How the final answer is read: the flag, else the answering model's entry, else the paper's rule."""
    return vars(args).get("answer_rule") or answering(specs).defaults.get("answer_rule") or PAPER_RULE


def resolved_priming(args: argparse.Namespace, spec: registry.ModelSpec) -> bool:
    return spec.prime_actions if args.prime_actions is None else bool(args.prime_actions)


def resolved_constraint(args: argparse.Namespace, spec: registry.ModelSpec) -> bool:
    return spec.constrain_actions if args.constrain_actions is None else bool(args.constrain_actions)


def role_profiles(timing: str | None, user_file: str | None,
                  specs: dict[str, registry.ModelSpec]) -> tuple[CostProfile | None, CostProfile | None]:
    """``(inference profile, answering profile)`` of a run's ``--timing``: one named profile
    (or measured: ``None``) charges every call; ``--timing model`` charges each model's
    calls by the profile its entry names (``timing = "..."``), so with collaborative
    inference the large model's calls cost the large model's time and the small one's
    final answer the small one's.  ``ProfileError`` when an entry names none."""
    if timing != PER_MODEL:
        profile = resolve_profile(timing, user_file)
        return profile, profile
    chosen = {}
    for role, spec in specs.items():
        if not spec.timing:
            raise ProfileError(f"--timing {PER_MODEL}: model '{spec.name}' names no timing profile "
                               f"(add timing = \"PROFILE\" to its entry, or give --timing PROFILE)")
        chosen[role] = resolve_profile(spec.timing, user_file)
    return chosen["model"], answering(chosen)


def run_config(args: argparse.Namespace, kind: str, specs: dict[str, registry.ModelSpec], prompts: PromptSet,
               profile: CostProfile | None = None, answer_profile: CostProfile | None = None) -> dict[str, Any]:
    """The resolved configuration saved beside the output (no secrets); ``profile`` is the
    already resolved ``--timing`` profile (None: measured), ``answer_profile`` the answering
    model's when it has its own (``--timing model``)."""
    # The default task, answer rule and offset are left out, so MMLU-Pro runs keep the configuration (and config_id) they had.
    # The paper's two methods are saved as the paper's flag (its alias), as every earlier run
    # saved them, so their config_id is unchanged; any other method is saved by name.
    method = methods.chosen(vars(args).get("method"), bool(vars(args).get(methods.ALIAS_FLAG)))
    flags = {k: v for k, v in sorted(vars(args).items())
             if k != "list_models" and not (k == "task" and v in (None, DEFAULT_TASK))
             and k != "answer_rule" and not (k == "question_offset" and not v)
             and not (k == "method" and method in methods.PAPER_METHODS)}
    flags = dict(sorted({**flags, methods.ALIAS_FLAG: method == "livemind"}.items()))
    config = {
        "script": kind,
        **flags,
        **{key: resolved_setting(args, specs, key) for key in PAPER_SETTINGS},
        **({"answer_rule": rule} if (rule := resolved_answer_rule(args, specs)) != PAPER_RULE else {}),
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
    if answer_profile is not None and answer_profile != profile:  # only then: other runs keep their config_id
        config["answer_timing_profile"] = answer_profile.as_dict()
    digest = hashlib.sha256(json.dumps({k: v for k, v in config.items() if k not in RUN_ONLY_KEYS},
                                       sort_keys=True, default=str).encode()).hexdigest()[:12]
    config["config_id"] = digest
    return config


def resolve(args: argparse.Namespace, kind: str, specs: dict[str, registry.ModelSpec], prompts: PromptSet,
            task: Task | None = None) -> RunConfig:
    """The run's ``RunConfig``: every plain field from the flag of its name (else its
    default), the rest resolved as ``run_config`` saves them, with the ``--timing``
    profile loaded once (``ProfileError`` if unknown or unreadable)."""
    flags = vars(args)  # the one place flags are read by name: a script may lack some (their defaults hold)
    method = methods.chosen(flags.get("method"), bool(flags.get(methods.ALIAS_FLAG)))
    profile, answer_profile = role_profiles(flags.get("timing"), flags.get("profiles"), specs)
    saved = run_config(args, kind, specs, prompts, profile, answer_profile)
    plain = {f.name: saved[f.name] for f in dataclasses.fields(RunConfig)
             if f.name not in _RESOLVED and f.name in saved}
    return RunConfig(script=kind, **plain, method=method, profile=profile, answer_profile=answer_profile, task=task, saved=MappingProxyType(saved),
                     **{k: saved[k] for k in ("max_new_tokens", "inference_max_new_tokens", "parse",
                                              "prime_actions", "constrain_actions", "config_id")})


@dataclass
class Setup:
    """Everything validated, nothing loaded: the run's settings (``run``), the model
    entries, the prompts and where the output goes (``None``: a live session without
    ``--output_file``).  ``config`` is what is saved beside the output (``run.saved``
    plus what a front end adds that ``config_id`` does not cover, e.g. the server's)."""

    args: argparse.Namespace
    output: Path | None
    specs: dict[str, registry.ModelSpec]
    prompts: PromptSet
    run: RunConfig
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.config:
            self.config = dict(self.run.saved)

    @property
    def profile(self) -> CostProfile | None:
        return self.run.profile

    @property
    def task(self) -> Task | None:
        return self.run.task
