"""Measure a local model's token-cost timing profile (docs/timing.md).

Runs a short sweep of model calls -- prompt lengths x completion limits, plus calls whose
prompt is mostly served from the prefix (KV) cache -- times each, and fits
``seconds = fixed + uncached·(prompt - cached) + cached·cached_tokens +
completion·completion_tokens`` by least relative squares, keeping the fixed cost >= 0
(``live_mind.analysis.fit``).  Prints the fit
and the ``[profiles.NAME]`` entry, naming the machine and its load average, to paste into
``live_mind/profiles.toml`` or a user profiles file (``--profiles FILE``).

Each point is measured ``--repeats`` times after one warm-up call and its fastest time is
kept: on a shared machine other jobs only ever add time, so the minimum is the least
disturbed reading.  The sweep takes about eight minutes for the embedded model on two
CPU cores shared with other jobs (load average 6-7).  The completion length is a limit: the
prompt asks for an endless count so greedy decoding rarely stops early, and the fit uses
the tokens actually generated.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from live_mind import cli, flags  # noqa: E402
from live_mind.analysis.fit import Sample, fit  # noqa: E402
from live_mind.models import registry  # noqa: E402
from live_mind.models.base import ChatRequest  # noqa: E402
from live_mind.models.capabilities import capabilities  # noqa: E402

FILLER = ("The committee reviewed the annual report, compared the figures with last year's, "
          "and noted every change in the budget lines one by one. ")
TASK = "Now count upward from 1, one number per line, and never stop."


def sweep_request(filler_words: int, max_new_tokens: int, key: str | None, tail: str = "") -> ChatRequest:
    words = FILLER.split()
    text = " ".join(words[i % len(words)] for i in range(filler_words))
    return ChatRequest([{"role": "user", "content": f"{text}\n\n{TASK}{tail}"}], max_new_tokens=max_new_tokens, cache_key=key)


def machine(model) -> str:  # noqa: ANN001
    cpu = platform.processor() or platform.machine()
    threads = ""
    try:
        import torch

        threads = f", torch {torch.__version__} with {torch.get_num_threads()} threads"
    except ImportError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores ({cpu}){threads}"


def main(argv: list[str] | None = None) -> int:
    p = flags.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=cli.DEFAULT_MODEL)
    p.add_argument("--models", default=None, help="model configuration TOML")
    p.add_argument("--name", default=None, help="profile name (default: local-<model>)")
    p.add_argument("--prompt_words", default="40,200,450,800", help="filler lengths in words (comma-separated)")
    p.add_argument("--completion_limits", default="1,16,48", help="max_new_tokens values (comma-separated)")
    p.add_argument("--samples", default=None, help="also write the measured points here (JSON) for refitting")
    p.add_argument("--repeats", type=int, default=3, help="measurements per point; the fastest is kept (default 3)")
    args = p.parse_args(argv)
    try:
        lengths = [int(x) for x in args.prompt_words.split(",")]
        limits = [int(x) for x in args.completion_limits.split(",")]
        if min(lengths) < 1 or min(limits) < 1 or args.repeats < 1:
            raise ValueError
        spec = registry.resolve(args.model, args.models)
        registry.check_available(spec)
    except ValueError:
        return cli.fail("--prompt_words, --completion_limits and --repeats take positive integers")
    except registry.ConfigError as exc:
        return cli.fail(str(exc))
    model = registry.build(spec, **({"prefix_cache": True} if capabilities(spec).prefix_cache else {}))
    load_before = os.getloadavg()
    model.complete([sweep_request(50, 4, None)])  # warm-up
    best: dict[tuple, Sample] = {}
    for rep in range(args.repeats):
        for words in lengths:
            for limit in limits:
                _keep_fastest(best, (words, limit), _measure(model, sweep_request(words, limit, None)))
            key = f"calibrate-{rep}-{words}"
            model.complete([sweep_request(words, 1, key)])  # fills the prefix cache
            _keep_fastest(best, (words, "cached"), _measure(model, sweep_request(words, 16, key, " Start at 1.")))
            print(f"repeat {rep + 1}/{args.repeats}, {words} words: done", flush=True)
    samples = list(best.values())
    if args.samples:
        Path(args.samples).write_text(json.dumps([asdict(s) for s in samples], indent=1), encoding="utf-8")
    load_after = os.getloadavg()
    where = (f"{machine(model)}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
             "(shared with other jobs)")
    fitted = fit(samples, args.name or f"local-{args.model}", description=f"{args.model} measured by benchmarks/calibrate.py",
                 machine=where, relative=True, nonnegative_fixed=True,
                 source=f"relative least squares (fixed >= 0) on a calibration sweep: fastest of {args.repeats} per point, "
                        f"{len(samples)} points, prompt words {lengths}, "
                                       f"completion limits {limits}, {args.repeats} repeats")
    cached = sum(1 for s in samples if s.cached)
    print(f"\n{len(samples)} points ({cached} with a cached prefix); machine: {where}")
    print(fitted.report())
    print(f"\nR² {fitted.r2:.4f}, median relative error {fitted.median_rel_error:.3f}\n")
    print(fitted.profile.toml_entry(), end="")
    return 0


def _keep_fastest(best: dict[tuple, Sample], point: tuple, sample: Sample) -> None:
    if point not in best or sample.seconds < best[point].seconds:
        best[point] = sample


def _measure(model, request: ChatRequest) -> Sample:  # noqa: ANN001
    done = model.complete([request])[0]
    return Sample(done.prompt_tokens, done.cached_tokens, done.completion_tokens, done.seconds)


if __name__ == "__main__":
    sys.exit(main())
