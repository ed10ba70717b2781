"""Latency benchmark: the CoT baseline, the paper's LiveMind and this toolkit's v2 path.

On the same model, questions and simulated typing speed it runs, question by question:

(a) ``cot``        the chain-of-thought baseline (one call on the complete question);
(b) ``v1``         LiveMind with the paper's protocol: v1 format, ``every``, options typed,
                   no cancellation, no prefix reuse (every call prefills its whole prompt);
(c) ``v2``         UA-SPI + prefix KV reuse (transformers ``prefix_cache=True``) +
                   ``cancel_on_complete`` + ``--schedule_v2`` (default ``latest``);
(d) ``v2-letter``  (c) with the constrained final answer (``--final_answer letter``);
(e) ``v2-prefill`` (c) with prefill while typing (``--prefill_while_typing``: each options
                   line is read into the prefix cache as it is typed, ``live_mind/prefill.py``);

(the model entry's small-model defaults -- response priming, constrained action names --
apply to b, c and d alike) and prints one table, rows in that order: mean / median / p90
latency, ratio of the mean to the baseline's, final-step prompt tokens and the share of
them served from the KV cache, the final answer's length in tokens and the final call's
prefill seconds (where the backend reports them; latency = that prefill + decoding the
answer), total prompt and completion tokens (compute cost), total generation time,
accuracy and the unparsed-action rate.  ``--json FILE`` writes the same numbers.

Latency is the real-time solver's simulated-typing latency (``solver.solve_question``):
every model call's *measured* wall time is charged on the simulated timeline, so the
numbers depend on this machine's speed but not on how fast it would type.  Beside it the
benchmark gives the latency *modelled* under token-cost profiles (``live_mind/analysis/remodel.py``,
docs/timing.md): ``--profile`` (default: the model's calibrated ``local-<model>`` profile)
gives ``latency_mean_modelled`` and ``ratio_to_baseline_modelled``, and every paper
profile gives the same pair under ``modelled`` -- figures that do not move with the
machine's load.  The
questions run one after another and the four configurations are interleaved per
question, so a slow spell of the machine hits all of them alike.  The model is loaded
twice when its backend is transformers (one instance with the prefix cache for c/d,
one without for a/b); other backends are loaded once and use what they have.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from live_mind import cli, flags  # noqa: E402
from live_mind.analysis.remodel import mean_modelled_latency  # noqa: E402
from live_mind.clock import PAPER_SECONDS_PER_CHAR  # noqa: E402
from live_mind.data import DataError, load_questions, select_questions, validate_data_path  # noqa: E402
from live_mind.formats import make_format  # noqa: E402
from live_mind.methods.cot import CoTController  # noqa: E402
from live_mind.methods.livemind import LiveMindController  # noqa: E402
from live_mind.models import registry  # noqa: E402
from live_mind.models.capabilities import capabilities  # noqa: E402
from live_mind.profiles import CostProfile, ProfileError, load_profiles  # noqa: E402
from live_mind.solver import TimingConfig, solve_question  # noqa: E402
from live_mind.tasks.resolve import resolve_task  # noqa: E402

SHARED_DATA = ROOT.parent / "shared" / "data" / "mmlu-pro-1400"
CONFIGS = ("cot", "v1", "v2", "v2-letter", "v2-prefill")
LABELS = {"cot": "(a) CoT baseline", "v1": "(b) LiveMind v1 (paper)", "v2": "(c) UA-SPI+reuse+cancel",
          "v2-letter": "(d) (c)+letter answer", "v2-prefill": "(e) (c)+prefill typing"}


@dataclass
class Row:
    """One configuration's line of the table (the ``--json`` object)."""

    config: str
    questions: int
    latency_mean: float
    latency_median: float
    latency_p90: float
    ratio_to_baseline: float | None
    final_prompt_tokens: float
    final_cached_share: float
    final_completion_tokens: float
    final_prefill_seconds: float | None
    prompt_tokens_total: int
    completion_tokens_total: int
    gen_time_total: float
    accuracy: float
    unparsed_rate: float | None
    failed: int
    profile: str | None = None
    latency_mean_modelled: float | None = None
    ratio_to_baseline_modelled: float | None = None
    modelled: dict[str, dict[str, float | None]] | None = None  # paper profiles: latency_mean, ratio_to_baseline


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = flags.ArgumentParser(description=__doc__.splitlines()[0])
    add = p.add_argument
    add("--model", default=cli.DEFAULT_MODEL)
    add("--models", default=None, help="model configuration TOML")
    add("--data_path", default=None, help=f"MMLU-Pro parquet folder (default {SHARED_DATA} if present, else the sample set); the task's data")
    add("--task", default=None, metavar="NAME|FILE",
        help="the questions of a multiple-choice task (mmlu-pro, mmlu or a TOML task file, docs/tasks.md); default MMLU-Pro")
    add("--num_questions", type=int, default=2, help="questions per category (default 2)")
    add("--seed", type=int, default=42)
    add("--typing_speed", type=float, default=PAPER_SECONDS_PER_CHAR, help=f"seconds per character (default {PAPER_SECONDS_PER_CHAR:g})")
    add("--inference_max_new_tokens", type=int, default=48,
        help="token limit of an inference call (default 48, below the embedded model's 96 to keep a run short)")
    add("--max_new_tokens", type=int, default=160, help="token limit of a final / CoT answer, as in the scripts (default 160)")
    add("--action_set", default="CAS", choices=["CAS", "SAS"])
    add("--prime_actions", default=None, action=argparse.BooleanOptionalAction,
        help="response priming for b, c, d (default: per model; on for the embedded model)")
    add("--constrain_actions", default=None, action=argparse.BooleanOptionalAction,
        help="constrained action names for b, c, d (default: per model; on for the embedded model)")
    add("--schedule_v2", default="latest", choices=["every", "latest"], help="schedule of (c) and (d) (default latest)")
    add("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {', '.join(CONFIGS)}")
    add("--json", default=None, help="write the table as a JSON list here")
    add("--records", default=None, help="folder for each configuration's output records (JSON)")
    add("--profile", default=None, help="timing profile of the modelled figures (default: local-<model> when defined)")
    add("--profiles", default=None, help="TOML file of extra timing profiles")
    return p.parse_args(argv)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), ``q`` in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(config: str, records: list[dict[str, Any]], baseline_mean: float | None,
              profiles: Sequence[CostProfile] = (), baseline: list[dict[str, Any]] | None = None) -> Row:
    """The table row of one configuration's records; modelled figures under ``profiles``
    (the first is the headline ``--profile``, the rest go under ``modelled``)."""
    ok = [r for r in records if not r.get("error")]
    lat = [r["time_info"]["latency"] for r in ok]
    final_prompt = [r["usage"]["prompt_tokens"][-1] for r in ok]
    final_cached = [r["usage"]["cached_tokens"][-1] for r in ok]
    inference = [s for r in ok for s in r["steps"] if s["kind"] == "inference" and s["parse_rule"] != "cancelled"]
    mean = statistics.fmean(lat) if lat else math.nan
    return Row(
        config=config,
        questions=len(records),
        latency_mean=mean,
        latency_median=statistics.median(lat) if lat else math.nan,
        latency_p90=percentile(lat, 90),
        ratio_to_baseline=(mean / baseline_mean) if baseline_mean else None,
        final_prompt_tokens=statistics.fmean(final_prompt) if final_prompt else math.nan,
        final_cached_share=(sum(final_cached) / sum(final_prompt)) if sum(final_prompt) else math.nan,
        final_completion_tokens=statistics.fmean(r["usage"]["completion_tokens"][-1] for r in ok) if ok else math.nan,
        final_prefill_seconds=statistics.fmean(prefill) if (prefill := [r["final_prefill_seconds"] for r in ok
                                                                         if r.get("final_prefill_seconds") is not None]) else None,
        prompt_tokens_total=sum(sum(r["usage"]["prompt_tokens"]) for r in ok),
        completion_tokens_total=sum(sum(r["usage"]["completion_tokens"]) for r in ok),
        gen_time_total=sum(r["time_info"]["total_gen_time"] for r in ok),
        accuracy=sum(bool(r["correct"]) for r in records) / len(records) if records else math.nan,
        unparsed_rate=(sum(s["parse_rule"] == "unparsed" for s in inference) / len(inference)) if inference else None,
        failed=len(records) - len(ok),
        **_modelled(records, profiles, baseline),
    )


def _modelled(records: list[dict[str, Any]], profiles: Sequence[CostProfile], baseline: list[dict[str, Any]] | None) -> dict[str, Any]:
    """``latency_mean_modelled`` / ``ratio_to_baseline_modelled`` under each profile."""
    pairs = {}
    for profile in profiles:
        mean = mean_modelled_latency(records, profile)
        base = mean_modelled_latency(baseline, profile) if baseline else None
        pairs[profile.name] = {"latency_mean": mean, "ratio_to_baseline": mean / base if mean is not None and base else None}
    if not profiles:
        return {}
    head = pairs[profiles[0].name]
    return {"profile": profiles[0].name, "latency_mean_modelled": head["latency_mean"],
            "ratio_to_baseline_modelled": head["ratio_to_baseline"], "modelled": {k: v for k, v in pairs.items() if k != profiles[0].name}}


def modelled_table(rows: Sequence[Row]) -> str:
    """Mean modelled latency and ratio to the baseline, one column pair per profile."""
    if not rows or rows[0].profile is None:
        return ""
    names = [rows[0].profile, *(rows[0].modelled or {})]
    head = f"{'modelled latency (s)':<26}" + "".join(f"{n:>22}{'ratio':>7}" for n in names)
    lines = [head, "-" * len(head)]
    for r in rows:
        pairs = [(r.latency_mean_modelled, r.ratio_to_baseline_modelled), *(((r.modelled or {})[n]["latency_mean"],
                 (r.modelled or {})[n]["ratio_to_baseline"]) for n in names[1:])]
        lines.append(f"{LABELS.get(r.config, r.config):<26}" + "".join(
            f"{(m if m is not None else math.nan):>22.2f}{(f'{q:.2f}' if q is not None else '-'):>7}" for m, q in pairs))
    return "\n".join(lines)


def table(rows: Sequence[Row]) -> str:
    """The printed table."""
    head = (f"{'configuration':<26}{'mean':>7}{'median':>8}{'p90':>7}{'ratio':>7}{'final_pt':>9}{'cached':>8}{'final_ct':>9}{'prefill':>8}"
            f"{'prompt_tok':>11}{'compl_tok':>10}{'gen_s':>8}{'acc':>6}{'unparsed':>9}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = f"{r.ratio_to_baseline:.2f}" if r.ratio_to_baseline is not None else "-"
        unparsed = f"{r.unparsed_rate:.2f}" if r.unparsed_rate is not None else "-"
        prefill = f"{r.final_prefill_seconds:.2f}" if r.final_prefill_seconds is not None else "-"
        lines.append(f"{LABELS.get(r.config, r.config):<26}{r.latency_mean:>7.2f}{r.latency_median:>8.2f}{r.latency_p90:>7.2f}"
                     f"{ratio:>7}{r.final_prompt_tokens:>9.1f}{r.final_cached_share:>8.2f}"
                     f"{r.final_completion_tokens:>9.1f}{prefill:>8}{r.prompt_tokens_total:>11}"
                     f"{r.completion_tokens_total:>10}{r.gen_time_total:>8.1f}{r.accuracy:>6.2f}{unparsed:>9}")
    return "\n".join(lines)


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__} "
            f"with {torch.get_num_threads()} threads, python {platform.python_version()}")


def build_controllers(args: argparse.Namespace, spec: registry.ModelSpec, chosen: list[str]) -> dict[str, Any]:
    """One controller per configuration, over one or two model instances."""
    switchable = capabilities(spec).prefix_cache  # else one instance with what the backend has
    plain = registry.build(spec, **({"prefix_cache": False} if switchable else {}))
    cached = registry.build(spec, prefix_cache=True) if switchable and {"v2", "v2-letter", "v2-prefill"} & set(chosen) else plain
    prime = spec.prime_actions if args.prime_actions is None else args.prime_actions
    constrain = prime and cli.resolved_constraint(args, spec)
    # parse="lenient": every configuration keeps malformed replies alike, as when the
    # benchmark's published figures were taken (docs/timing.md)
    common = dict(action_set_name=args.action_set or "CAS", prime_actions=prime, constrain_actions=constrain, parse="lenient",
                  max_new_tokens=args.inference_max_new_tokens,
                  final_max_new_tokens=args.max_new_tokens)
    made: dict[str, Any] = {
        "cot": CoTController(plain, max_new_tokens=args.max_new_tokens),
        "v1": LiveMindController(plain, prompt_format=make_format("v1"), **common),
        "v2": LiveMindController(cached, prompt_format=make_format("UA-SPI"), **common),
        "v2-letter": LiveMindController(cached, prompt_format=make_format("UA-SPI"), final_answer="letter", **common),
        "v2-prefill": LiveMindController(cached, prompt_format=make_format("UA-SPI"), **common),
    }
    return {name: made[name] for name in chosen}


def chosen_profiles(args: argparse.Namespace) -> list[CostProfile]:
    """The headline profile (``--profile``, else ``local-<model>`` when defined), then the
    paper profiles; ``ProfileError`` for an unknown ``--profile``."""
    known = load_profiles(args.profiles)
    name = args.profile or (f"local-{args.model}" if f"local-{args.model}" in known else None)
    if name is not None and name not in known:
        raise ProfileError(f"unknown profile {name!r}; known: {', '.join(sorted(known))}")
    paper = [p for n, p in sorted(known.items()) if n.startswith("paper-") and n != name]
    return ([known[name]] if name else []) + paper


def timings(args: argparse.Namespace) -> dict[str, TimingConfig]:
    v1 = TimingConfig(typing_speed=args.typing_speed, seed=args.seed, schedule="every")
    v2 = TimingConfig(typing_speed=args.typing_speed, seed=args.seed, schedule=args.schedule_v2, cancel_on_complete=True)
    prefill = TimingConfig(typing_speed=args.typing_speed, seed=args.seed, schedule=args.schedule_v2, cancel_on_complete=True,
                           prefill_while_typing=True)
    return {"cot": v1, "v1": v1, "v2": v2, "v2-letter": v2, "v2-prefill": prefill}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = [c.strip() for c in args.configs.split(",") if c.strip()]
    try:
        unknown = [c for c in chosen if c not in CONFIGS]
        if unknown or not chosen:
            raise cli.UsageError(f"--configs: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(CONFIGS)}")
        for flag in ("num_questions", "inference_max_new_tokens", "max_new_tokens", "typing_speed"):
            if vars(args)[flag] <= 0:
                raise cli.UsageError(f"--{flag} must be > 0")
        data_path = args.data_path or (str(SHARED_DATA) if SHARED_DATA.exists() and not args.task else None)
        if data_path and not args.task:
            validate_data_path(data_path)
        task = resolve_task(args.task, data_path) if args.task else None
        if task is not None and not task.has_options:
            raise cli.UsageError(f"--task {args.task}: the benchmark's configurations answer with an option letter; "
                                 f"task {task.name} has free-form answers")
        spec = registry.resolve(args.model, args.models)
        registry.check_available(spec)
        profiles = chosen_profiles(args)
        questions = (task.questions(args.num_questions, args.seed) if task is not None
                     else select_questions(load_questions(data_path), args.num_questions, seed=args.seed))
    except (cli.UsageError, DataError, registry.ConfigError, ProfileError) as exc:
        return cli.fail(str(exc))
    prime = spec.prime_actions if args.prime_actions is None else args.prime_actions
    print(f"{len(questions)} questions from {args.task or data_path or 'the bundled sample set'}; model {args.model}; "
          f"typing {args.typing_speed} s/char; inference_max_new_tokens {args.inference_max_new_tokens}, max_new_tokens {args.max_new_tokens}; "
          f"priming {'on' if prime else 'off'}, constrained action names "
          f"{'on' if prime and cli.resolved_constraint(args, spec) else 'off'}", flush=True)
    controllers = build_controllers(args, spec, chosen)
    timing = timings(args)
    records: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    for i, row in enumerate(questions, 1):
        line = []
        for name in chosen:
            ctrl = controllers[name]
            model = getattr(ctrl, "inference_model", None) or getattr(ctrl, "model", None)
            if hasattr(model, "clear_prefix_cache"):  # c and d share a model: no reuse across configurations
                model.clear_prefix_cache()
            record = solve_question(ctrl, row, timing[name], {"config": name})
            final = ctrl.steps[-1] if ctrl.steps and ctrl.steps[-1].kind == "final" else None
            record["final_prefill_seconds"] = final.completion.extra.get("prefill_seconds") if final else None
            records[name].append(record)
            info = record.get("time_info") or {}
            line.append(f"{name} {info.get('latency', float('nan')):.1f}s")
        print(f"[{i}/{len(questions)}] {row['category']:<17} " + "  ".join(line) +
              f"  ({time.perf_counter() - started:.0f}s elapsed)", flush=True)
    elapsed = time.perf_counter() - started
    baseline = summarize("cot", records["cot"], None).latency_mean if "cot" in records else None
    rows = [summarize(name, records[name], baseline, profiles, records.get("cot")) for name in chosen]
    print()
    print(table(rows))
    if profiles:
        print()
        print(modelled_table(rows))
    print(f"\nmachine: {machine()}; load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}; "
          f"benchmark time {elapsed / 60:.1f} min")
    by = {r.config: r for r in rows}
    if "v2" in by:
        print(f"final-step cached share of (c): {by['v2'].final_cached_share:.2f} (target >= 0.9)")
    if "v2-prefill" in by:
        print(f"final-step cached share with prefill while typing (e): {by['v2-prefill'].final_cached_share:.2f} (target >= 0.9)")
    if "v2" in by:
        if "v1" in by:
            print(f"latency ratio (c)/(b): {by['v2'].latency_mean / by['v1'].latency_mean:.2f} (target <= 0.7)")
        if "cot" in by:
            print(f"latency ratio (c)/(a): {by['v2'].latency_mean / by['cot'].latency_mean:.2f} "
                  "(paper, Llama-3-70B: 0.41 in v1, 0.28 in v2)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(r).items()} for r in rows]
        for entry in clean:
            entry["machine"] = machine()
        Path(args.json).write_text(json.dumps(clean, indent=1), encoding="utf-8")
        print(f"wrote {args.json}")
    if args.records:
        folder = Path(args.records)
        folder.mkdir(parents=True, exist_ok=True)
        for name, recs in records.items():
            (folder / f"{name}.json").write_text(json.dumps(recs, indent=1, default=str), encoding="utf-8")
        print(f"wrote records to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
