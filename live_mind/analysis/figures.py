"""Figures for the analysis scripts (the paper's latency plots and Fig. 8).

Two kinds, both drawn from the tables of ``live_mind.analysis`` so that a figure
always shows exactly the numbers of the CSV beside it:

* ``length_figure`` -- a metric (latency, tokens) by question length, one line per
  run, with the number of questions per length as grey bars on a second axis (long
  questions are rare, so their means are noisy and the bars say how much).
* ``action_figure`` -- stacked bars of action shares per inference step, one panel
  per run, like the paper's Fig. 8.

matplotlib is imported lazily and used through ``matplotlib.figure.Figure`` (no
pyplot, no global state, no display; PNGs are rendered by Agg): the scripts stay
fast with ``--no_figures``.  PNGs go beside the CSVs; with a
``res_dir`` a copy named ``<run>_<figure>.png`` goes there too (for the README).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

from .tables import ACTION_TYPES, Table

ACTION_COLORS = {"background": "#4C72B0", "inference": "#55A868", "hypothesize": "#DD8452",
                 "wait": "#BBBBBB", "unparsed": "#C44E52"}


def _figure(**kwargs: Any) -> Any:
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig: Any, path: Path, res_dir: str | Path | None, prefix: str) -> list[Path]:
    path = Path(path)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    written = [path]
    if res_dir is not None:
        Path(res_dir).mkdir(parents=True, exist_ok=True)
        written.append(Path(shutil.copyfile(path, Path(res_dir) / f"{prefix}_{path.name}")))
    return written


def _column(table: Table, name: str) -> int:
    try:
        return table.header.index(name)
    except ValueError:
        raise KeyError(f"table has no column {name!r}") from None


def length_figure(table: Table, label: str, names: Sequence[str], path: Path, *, ylabel: str,
                  title: str | None = None, res_dir: str | Path | None = None, prefix: str = "run") -> list[Path]:
    """Mean ``File i <label>`` by length (x sorted), one line per run in ``names``."""
    rows = sorted((r for r in table.rows if r[0] != "All"), key=lambda r: r[0])
    lengths = [r[0] for r in rows]
    fig = _figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    counts_ax = ax.twinx()
    counts_ax.bar(lengths, [r[1] for r in rows], color="#DDDDDD", width=0.7, zorder=0)
    counts_ax.set_ylabel("questions")
    ax.set_zorder(counts_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    for i, name in enumerate(names, 1):
        col = _column(table, f"File {i} {label}")
        points = [(r[0], r[col]) for r in rows if r[col] is not None]
        ax.plot([x for x, _ in points], [y for _, y in points], marker="o", markersize=4, label=name)
    ax.set_xlabel("question length (sentences + 1)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.set_xticks(lengths)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or f"Mean {ylabel} by question length (grey bars: questions per length)", fontsize=10)
    return _save(fig, path, res_dir, prefix)


def action_figure(table: Table, names: Sequence[str], path: Path, *, min_calls: int = 10,
                  res_dir: str | Path | None = None, prefix: str = "run") -> list[Path]:
    """Stacked action shares (percent) per step, one panel per run (paper Fig. 8).

    Steps with fewer than ``min_calls`` calls (the long tail of long questions, whose
    shares are noise) are not drawn unless no step has that many; the CSV has them all.
    """
    fig = _figure(figsize=(max(6.5, 4.5 * len(names)), 4.2))
    axes = fig.subplots(1, len(names), sharey=True, squeeze=False)
    for i, (name, ax) in enumerate(zip(names, axes[0]), 1):
        calls_col = _column(table, f"File {i} Calls")
        rows = [r for r in table.rows if r[0] != "All" and r[calls_col]]
        cut = any(r[calls_col] >= min_calls for r in rows) and any(r[calls_col] < min_calls for r in rows)
        if cut:
            rows = [r for r in rows if r[calls_col] >= min_calls]
        steps = [r[0] for r in rows]
        bottom = [0.0] * len(rows)
        for kind in ACTION_TYPES:
            col = _column(table, f"File {i} {kind.capitalize()}")
            shares = [r[col] for r in rows]
            if any(shares):
                ax.bar(steps, shares, bottom=bottom, color=ACTION_COLORS[kind], label=kind, width=0.8)
            bottom = [b + s for b, s in zip(bottom, shares)]
        for step, r in zip(steps, rows):
            ax.text(step, 101, str(r[calls_col]), ha="center", va="bottom", fontsize=6, color="#555555",
                    rotation=90)
        ax.set_title(name, fontsize=10, pad=6)
        ax.set_xlabel("step (inference call)" + (f"; steps with ≥ {min_calls} calls" if cut else ""))
        ax.set_xticks(steps)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_ylim(0, 112)
        ax.set_yticks(range(0, 101, 20))
    axes[0][0].set_ylabel("share of actions (%); calls per step above bars")
    legend = {label: handle for ax in axes[0] for handle, label in zip(*ax.get_legend_handles_labels())}
    labels = [kind for kind in ACTION_TYPES if kind in legend]
    handles = [legend[kind] for kind in labels]
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save(fig, path, res_dir, prefix)


ACTED_WAITED_TITLE = "Latency where the model acted during typing vs where it only waited (labels: final-answer tokens)"
FINAL_LENGTH_TITLE = "Latency where the final answer concluded vs where it solved again (labels: final-answer tokens)"


def acted_waited_figure(table: Table, path: Path, *, res_dir: str | Path | None = None, prefix: str = "run",
                        title: str = ACTED_WAITED_TITLE) -> list[Path]:
    """Mean latency of each LiveMind run's groups of questions (acted / waited:
    ``effect.acted_waited_table``; or any table of its columns, e.g. ``final_length_table``)
    beside the baseline's on the same questions; modelled latency when the runs have it,
    else as timed.  Bar labels give the questions and mean final tokens."""
    return _save(split_figure(table, title), path, res_dir, prefix)


def split_figure(table: Table, title: str = ACTED_WAITED_TITLE) -> Any:
    """The figure of ``acted_waited_figure``, not yet saved.  Each group gets 2.6 inches
    of width, so that the tick labels (run, group, count on three lines) of several runs'
    groups stand apart."""
    modelled = any(r[_column(table, "Modelled Latency")] is not None for r in table.rows)
    own, base = ("Modelled Latency", "Base Modelled Latency") if modelled else ("Latency", "Base Latency")
    rows = [r for r in table.rows if r[_column(table, own)] is not None]
    fig = _figure(figsize=(max(7.5, 2.6 * len(rows)), 4.4))
    ax = fig.subplots()
    xs = list(range(len(rows)))
    labels = [f"{r[0]}\n{r[1]}\n(n={r[2]})" for r in rows]
    width = 0.38
    ours = ax.bar([x - width / 2 for x in xs], [r[_column(table, own)] for r in rows], width, label="LiveMind", color="#55A868")
    theirs = ax.bar([x + width / 2 for x in xs], [r[_column(table, base)] or 0 for r in rows], width,
                    label="CoT baseline, same questions", color="#BBBBBB")
    for bars, column in ((ours, "Final Tokens"), (theirs, "Base Final Tokens")):
        for bar, row in zip(bars, rows):
            tokens = row[_column(table, column)]
            if tokens is not None:
                ax.annotate(f"{tokens:.0f} tok", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=7)
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel(f"mean {'modelled ' if modelled else ''}latency (s)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return fig
