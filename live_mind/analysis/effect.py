"""Where the latency gain comes from: the headline figures of several runs, and LiveMind's
questions split by whether the model acted while the user typed (paper §4.2, §4.3).

The paper's gain comes from short final answers: the reasoning was done during typing,
so the answer after the complete input only concludes.  Where the model only waited,
nothing was done early and the final answer is a whole chain of thought.  So besides
each run's latency this module reports, per run:

* accuracy with a 95 % Wilson interval (failed records count as wrong);
* mean, p50 and p95 latency -- as the run was timed (``time_info``), and modelled from
  the run's tokens under the timing profiles its models name (``remodel.replay``, the
  answering model's profile for the final call), so that runs made on a loaded machine
  compare by tokens, not by the machine's noise;
* final-answer tokens, and how many final answers hit the answering token limit
  (``max_new_tokens`` from the run's saved configuration);
* inference replies parsed (v1 rule or lenient, as the run kept them) and the share of
  questions where the model *acted* (took a background, inference or hypothesize action
  with some content).

``acted_waited_table`` splits each LiveMind run's questions into acted / waited and
gives both subsets' latency, final tokens and accuracy, beside the baseline's on the
same questions.  A model that acts on every question leaves that split one-sided; what
then tells is the final answer itself (§4.2): a short one *concluded* from what was
inferred while the user typed, a long one *solved again* from the start.
``final_length_table`` splits the questions that way (at ``SHORT_FINAL`` tokens unless
told otherwise).  ``common_questions`` keeps only the questions every run holds, so that
runs stopped early, or made on other selections, compare on the same questions.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from typing import Any, Callable, Sequence

from ..profiles import ProfileError, load_profiles
from .remodel import replay
from .tables import AnalysisError, Record, Run, Table, final_tokens, latency


def wilson(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of ``correct / total``, in percent."""
    if total == 0:
        return (0.0, 0.0)
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (100 * max(0.0, centre - half), 100 * min(1.0, centre + half))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation between order statistics."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def saved_config(run: Run) -> dict[str, Any]:
    """The ``.config.json`` saved beside a run (``{}`` when absent: e.g. the authors' files)."""
    path = run.path.with_suffix(".config.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def model_profiles(run: Run, user_file: str | None = None) -> tuple[Any, Any] | None:
    """``(inference profile, answering profile)`` named by the run's models' entries
    (``timing`` in the saved model configuration); ``None`` when a model names none."""
    models = saved_config(run).get("model_config") or {}
    names = [models.get(role, {}).get("timing") for role in ("model", "assist_model")]
    if not names[0]:
        return None
    try:
        known = load_profiles(user_file)
    except ProfileError as exc:
        raise AnalysisError(str(exc)) from None
    chosen = [known.get(name) if name else None for name in names]
    if chosen[0] is None or (names[1] and chosen[1] is None):
        return None
    return chosen[0], chosen[1] or chosen[0]


def modelled_latencies(run: Run, profiles: tuple[Any, Any] | None) -> list[float | None]:
    if profiles is None:
        return [None] * len(run.records)
    out = []
    for record in run.records:
        result = replay(record, profiles[0], answer_profile=profiles[1])
        out.append(None if result is None else result.latency)
    return out


WORK_ACTIONS = ("background", "inference", "hypothesize")
"""Actions that do work while the user types (the paper's non-wait actions)."""


def acted(record: Record) -> bool | None:
    """Whether the model did work while the user typed: a working action with some content
    (None: no inference calls).  A reply the paper's rule keeps under another name (``action
    wait`` without its period reads as ``wai``) and a bare ``action inference`` with nothing
    after it are no work done, so they do not count."""
    steps = record.get("steps") or []
    if not any(s.get("kind") == "inference" for s in steps):
        return None
    return any(a.get("type") in WORK_ACTIONS and str(a.get("content") or "").strip() for a in record.get("actions") or [])


def _parsed(record: Record) -> tuple[int, int]:
    steps = [s for s in record.get("steps") or [] if s.get("kind") == "inference" and s.get("action") != "cancelled"]
    return sum(1 for s in steps if s.get("action") and s.get("action") != "unparsed"), len(steps)


def _stats(values: Sequence[float | None]) -> list[float | None]:
    present = [v for v in values if v is not None]
    return [statistics.fmean(present) if present else None, percentile(present, 50), percentile(present, 95)]


def summary_table(runs: Sequence[Run], user_file: str | None = None) -> Table:
    """One row per run: the headline figures (see the module notes)."""
    rows = []
    for run in runs:
        n, right = len(run.records), sum(run.correct)
        low, high = wilson(right, n)
        limit = saved_config(run).get("max_new_tokens")
        finals = [final_tokens(r) for r in run.records]
        at_limit = sum(1 for t in finals if limit and t is not None and t >= limit) if limit else None
        parsed = [_parsed(r) for r in run.records]
        flags = [a for a in (acted(r) for r in run.records) if a is not None]
        modelled = modelled_latencies(run, model_profiles(run, user_file))
        rows.append([run.name, n, 100 * right / n, low, high,
                     *_stats([latency(r) for r in run.records]), *_stats(modelled),
                     statistics.fmean([t for t in finals if t is not None]) if any(t is not None for t in finals) else None,
                     f"{at_limit}/{n}" if at_limit is not None else "",
                     f"{sum(p for p, _ in parsed)}/{sum(t for _, t in parsed)}" if flags else "",
                     f"{sum(flags)}/{len(flags)}" if flags else "", read_by(run)])
    return Table(["Run", "Questions", "Accuracy", "CI95 Low", "CI95 High", "Latency Mean", "Latency P50", "Latency P95",
                  "Modelled Mean", "Modelled P50", "Modelled P95", "Final Tokens", "Final At Limit", "Replies Parsed",
                  "Acted", "Read By"], rows)


def acted_waited_table(base: Run | None, lives: Sequence[Run], user_file: str | None = None) -> Table:
    """Each LiveMind run's questions split by acted / waited: questions, accuracy, mean
    latency (as timed, and modelled), mean final tokens -- and the baseline's on the
    same questions (matched by ``question_id``)."""
    return _split_table(base, lives, (("acted", lambda r: acted(r) is True), ("waited", lambda r: acted(r) is False)),
                        user_file)


def _split_table(base: Run | None, lives: Sequence[Run], groups: Sequence[tuple[str, Callable[[Record], bool]]],
                 user_file: str | None) -> Table:
    by_id = {r.get("question_id"): i for i, r in enumerate(base.records)} if base else {}
    base_modelled = modelled_latencies(base, model_profiles(base, user_file)) if base else []
    rows = []
    for run in lives:
        modelled = modelled_latencies(run, model_profiles(run, user_file))
        for label, want in groups:
            idx = [i for i, r in enumerate(run.records) if want(r)]
            if not idx:
                rows.append([run.name, label, 0, None, None, None, None, None, None, None])
                continue
            twins = [by_id[run.records[i].get("question_id")] for i in idx if run.records[i].get("question_id") in by_id]
            mean = lambda values: statistics.fmean(values) if values else None  # noqa: E731
            rows.append([run.name, label, len(idx), 100 * sum(run.correct[i] for i in idx) / len(idx),
                         mean([v for i in idx if (v := latency(run.records[i])) is not None]),
                         mean([v for i in idx if (v := modelled[i]) is not None]),
                         mean([v for i in idx if (v := final_tokens(run.records[i])) is not None]),
                         mean([v for j in twins if (v := latency(base.records[j])) is not None]) if base else None,
                         mean([v for j in twins if (v := base_modelled[j]) is not None]) if base else None,
                         mean([v for j in twins if (v := final_tokens(base.records[j])) is not None]) if base else None])
    return Table(["Run", "Questions Where", "Questions", "Accuracy", "Latency", "Modelled Latency", "Final Tokens",
                  "Base Latency", "Base Modelled Latency", "Base Final Tokens"], rows)


SHORT_FINAL = 100
"""Final answers of at most this many tokens count as *concluded* in ``final_length_table``."""


def final_length_table(base: Run | None, lives: Sequence[Run], short: int = SHORT_FINAL,
                       user_file: str | None = None) -> Table:
    """Each LiveMind run's questions split by the final answer's length: ``concluded`` (at
    most ``short`` tokens) or ``solved again`` (longer, or no token count) -- the same
    columns as ``acted_waited_table``."""
    def concluded(record: Record) -> bool:
        tokens = final_tokens(record)
        return tokens is not None and tokens <= short

    groups = ((f"concluded (<= {short} tokens)", concluded), (f"solved again (> {short})", lambda r: not concluded(r)))
    return _split_table(base, lives, groups, user_file)


def common_questions(runs: Sequence[Run]) -> list[Run]:
    """The runs restricted to the questions (``question_id``) every one of them holds, in
    each run's own order; ``AnalysisError`` when they share none."""
    ids = [{r.get("question_id") for r in run.records} for run in runs]
    shared = set.intersection(*ids) if ids else set()
    if not shared:
        raise AnalysisError("the runs share no question (question_id): nothing to compare")
    out = []
    for run in runs:
        keep = [i for i, r in enumerate(run.records) if r.get("question_id") in shared]
        out.append(Run(run.path, [run.records[i] for i in keep], [run.lengths[i] for i in keep],
                       [run.correct[i] for i in keep]))
    return out


def read_by(run: Run) -> str:
    """How each answer was read (``answer_read_by``: which pattern of the answer rule), as
    ``paper 22, boxed 11, none 6``; empty when the records do not say (older runs)."""
    if not any("answer_read_by" in r for r in run.records):
        return ""
    counts = Counter(r.get("answer_read_by") or "none" for r in run.records)
    return ", ".join(f"{rule} {n}" for rule, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def is_livemind(run: Run) -> bool:
    return any(acted(r) is not None for r in run.records)

