"""Fit a token-cost profile (``profiles.CostProfile``) from run files.

Samples -- ``(prompt tokens, cached tokens, completion tokens, seconds)`` per call -- come
from any output file with per-call usage:

* this toolkit's records: every step with its measured ``seconds`` (cancelled steps too:
  their seconds and tokens are both the whole call's);
* the authors' v1 files (no ``steps``): the final call of each record whose
  ``overhead_time`` is 0, where ``latency`` is exactly that call's time (paper §4.1); the
  last entry of the ``usage`` lists is the final call.  A baseline (CoT) record has one
  call, so all its records qualify.

Runs whose step seconds are batch wall times -- the batched solver's, or the real-time
solver's under ``--concurrency N > 1`` -- are refused (``batch_times``): such a second is
not one call's cost.

The fit is ordinary least squares (numpy) of seconds on ``[1, uncached, cached,
completion]``.  When no sample has cached tokens (the v1 files report none) the cached
column is dropped and the cached coefficient is set to ``cached_default`` (0 by default:
a cached token skips prefill, and what it still costs -- attention over it while
decoding -- is already inside the completion coefficient of such a fit).

``relative=True`` weights each call by ``1/seconds`` (least *relative* squares), so short
calls count as much as long ones -- what a calibration sweep from 0.1 s to 10 s needs;
``nonnegative_fixed=True`` refits without the intercept (fixed = 0) when it comes out
negative, which a noisy sweep on a busy machine can give.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..jsonfile import JSONFileError, read_json
from ..profiles import CostProfile


class FitError(ValueError):
    """Unusable input for a fit (one line, for the user)."""


@dataclass(frozen=True)
class Sample:
    """One call: its tokens and its measured seconds."""

    prompt: int
    cached: int
    completion: int
    seconds: float


@dataclass(frozen=True)
class Fit:
    """A fitted profile and how well it explains its samples."""

    profile: CostProfile
    samples: int
    r2: float
    median_rel_error: float
    p90_rel_error: float
    cached_fitted: bool

    def report(self) -> str:
        p = self.profile
        cached = "fitted" if self.cached_fitted else "not in the data; set"
        return "\n".join([
            f"profile {p.name}: {self.samples} calls",
            f"  fixed      {p.fixed:+.6f} s per call",
            f"  uncached   {p.uncached:.6f} s per prompt token",
            f"  cached     {p.cached:.6f} s per cached prompt token ({cached})",
            f"  completion {p.completion:.6f} s per completion token",
            f"  R² {self.r2:.6f}; relative error median {self.median_rel_error:.4f}, p90 {self.p90_rel_error:.4f}",
        ])


def record_samples(record: dict[str, Any]) -> list[Sample]:
    """The usable calls of one record (see the module docstring)."""
    if record.get("error"):
        return []
    steps = record.get("steps")
    if isinstance(steps, list) and steps:
        return [Sample(int(s["prompt_tokens"]), int(s.get("cached_tokens") or 0), int(s["completion_tokens"]), float(s["seconds"]))
                for s in steps if isinstance(s.get("seconds"), (int, float))]
    usage, info = record.get("usage") or {}, record.get("time_info") or {}
    prompts, completions = usage.get("prompt_tokens") or [], usage.get("completion_tokens") or []
    if not prompts or not completions or info.get("overhead_time") != 0 or not isinstance(info.get("latency"), (int, float)):
        return []
    cached = (usage.get("cached_tokens") or [0])[-1] if len(usage.get("cached_tokens") or []) == len(prompts) else 0
    return [Sample(int(prompts[-1]), int(cached or 0), int(completions[-1]), float(info["latency"]))]


def file_samples(path: str | Path) -> list[Sample]:
    """All usable calls of one run file (a JSON list of records)."""
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise FitError(f"{path}: no such file") from None
    except OSError as exc:
        raise FitError(f"{path}: cannot read a run file ({exc})") from None
    except JSONFileError as exc:
        raise FitError(str(exc)) from None
    if not isinstance(data, list):
        raise FitError(f"{path}: expected a JSON list of records")
    return [s for r in data if isinstance(r, dict) for s in record_samples(r)]


def _nonnegative_lstsq(design: Any, target: Any) -> Any:
    """Least squares with every coefficient >= 0: the best unconstrained solution over each
    subset of the columns whose coefficients all come out >= 0 (the others held at 0).
    Exact for the few columns of a profile (at most 2^4 subsets)."""
    import itertools

    columns = design.shape[1]
    best, best_residual = np.zeros(columns), float(((target) ** 2).sum())
    for size in range(1, columns + 1):
        for subset in itertools.combinations(range(columns), size):
            coef, *_ = np.linalg.lstsq(design[:, subset], target, rcond=None)
            if (coef < 0).any():
                continue
            residual = float(((design[:, subset] @ coef - target) ** 2).sum())
            if residual < best_residual:
                best, best_residual = np.zeros(columns), residual
                best[list(subset)] = coef
    return best


def fit(samples: Sequence[Sample], name: str, *, cached_default: float = 0.0, description: str = "",
        machine: str = "", source: str = "", relative: bool = False, nonnegative_fixed: bool = False,
        nonnegative: bool = False) -> Fit:
    """Least-squares profile over ``samples`` (``nonnegative``: every coefficient >= 0, for
    noisy calls from a busy machine where a free fit can give a cached or fixed cost below 0)."""
    if len(samples) < 4:
        raise FitError(f"need at least 4 calls with usage and seconds to fit a profile, got {len(samples)}")
    prompt = np.array([s.prompt for s in samples], dtype=float)
    cached = np.array([min(s.cached, s.prompt) for s in samples], dtype=float)
    completion = np.array([s.completion for s in samples], dtype=float)
    seconds = np.array([s.seconds for s in samples], dtype=float)
    with_cached = bool(cached.any())
    columns = [np.ones_like(prompt), prompt - cached] + ([cached] if with_cached else []) + [completion]
    design = np.column_stack(columns)
    weight = 1.0 / np.maximum(seconds, 1e-6) if relative else np.ones_like(seconds)
    coef, *_ = np.linalg.lstsq(design * weight[:, None], seconds * weight, rcond=None)
    if nonnegative:
        coef = _nonnegative_lstsq(design * weight[:, None], seconds * weight)
    elif nonnegative_fixed and coef[0] < 0:
        rest, *_ = np.linalg.lstsq(design[:, 1:] * weight[:, None], seconds * weight, rcond=None)
        coef = np.concatenate([[0.0], rest])
    predicted = design @ coef
    residual = float(((seconds - predicted) ** 2).sum())
    total = float(((seconds - seconds.mean()) ** 2).sum())
    r2 = 1.0 - residual / total if total > 0 else float("nan")
    positive = seconds > 0
    rel = np.abs(predicted[positive] - seconds[positive]) / seconds[positive]
    cached_coef = float(coef[2]) if with_cached else float(cached_default)
    profile = CostProfile(name, float(coef[0]), float(coef[1]), cached_coef, float(coef[-1]),
                          description, machine, source)
    return Fit(profile, len(samples), r2, float(np.median(rel)) if rel.size else float("nan"),
               float(np.percentile(rel, 90)) if rel.size else float("nan"), with_cached)


def batch_times(path: str | Path) -> str | None:
    """Why a run file's step ``seconds`` are batch wall times (``None``: they are each
    call's own).  Read from the run's saved configuration (``X.config.json``): the batched
    solver and ``--concurrency N > 1`` share the engine between questions, so a step's
    seconds is a whole batch's time or a call slowed by its neighbours; without the
    configuration, steps without simulated times are the batched solver's."""
    path = Path(path)
    try:
        config = json.loads(path.with_suffix(".config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        config = None
    if isinstance(config, dict):
        if config.get("script") == "batched":
            return "it was made by the batched solver"
        if isinstance(config.get("concurrency"), int) and config["concurrency"] > 1:
            return f"it was made with --concurrency {config['concurrency']}"
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    steps = [s for r in data if isinstance(r, dict) for s in (r.get("steps") or []) if isinstance(s, dict)] if isinstance(data, list) else []
    if any("seconds" in s and "arrival" not in s for s in steps):
        return "its steps have no simulated times (a batched solver's run)"
    return None


def fit_files(paths: Iterable[str | Path], name: str, allow_batch_times: bool = False, **kwargs: Any) -> Fit:
    """Fit one profile over the calls of several run files; a run whose step seconds are
    batch times is refused unless ``allow_batch_times``."""
    paths = list(paths)
    for path in paths if not allow_batch_times else []:
        reason = batch_times(path)
        if reason:
            raise FitError(f"{path}: step seconds are batch wall times ({reason}), not one call's; "
                           "fit on a sequential run, or pass --allow_batch_times")
    samples = [s for p in paths for s in file_samples(p)]
    if not samples:
        raise FitError("no usable calls: records need per-call usage and either steps with seconds "
                       "or (v1 files) final calls with overhead_time 0")
    kwargs.setdefault("source", "fitted from " + ", ".join(Path(p).parent.name + "/" + Path(p).name for p in paths))
    return fit(samples, name, **kwargs)
