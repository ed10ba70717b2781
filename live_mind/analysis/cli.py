"""Command-line glue of the analysis scripts (``analyze_*.py``, ``compare_runs.py``).

The tables live in ``tables.py`` and the figures in ``figures.py``; this module
wires them to files: shared arguments, the scripts' one ``main`` (``script_main``), the
output folder, the one-line error reporting (exit code 2) and the common body of the
by-length reports.  Keeping it apart lets ``figures.py`` import ``tables.py`` without a
cycle.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .. import flags
from .tables import AnalysisError, Run, Table, accuracy, check_agreement, final_tokens, groups, latency, load_runs, mean_of
from .tables import _no_gc as no_gc

# --- comparison of a baseline and a LiveMind run -------------------------------------

def compare_table(base: Run, live: Run, metric: str = "auto") -> Table:
    """Headline numbers: accuracy difference (points) and latency/tokens reduction (%).

    ``metric`` is ``latency``, ``tokens`` or ``auto`` (latency when both files have
    ``time_info``, else final-call completion tokens).  Rows: All, categories, lengths.
    """
    if metric == "auto":
        metric = "latency" if base.has(latency) and live.has(latency) else "tokens"
    if metric not in ("latency", "tokens"):
        raise AnalysisError(f"unknown metric {metric!r}; choose latency, tokens or auto")
    field_of = latency if metric == "latency" else final_tokens
    for run in (base, live):
        if not run.has(field_of):
            raise AnalysisError(f"{run.path}: no record has {'time_info' if metric == 'latency' else 'usage'}")
    check_agreement([base, live])
    label = metric.capitalize()
    header = ["Group", "Key", "Total", "Base Accuracy", "LiveMind Accuracy", "Accuracy Diff",
              f"Base {label}", f"LiveMind {label}", f"{label} Reduction"]
    rows = []
    mean = mean_of(field_of)
    for by in ("all", "category", "length"):
        base_groups = {"All": list(range(len(base.records)))} if by == "all" else groups(base, by)
        live_groups = {"All": list(range(len(live.records)))} if by == "all" else groups(live, by)
        for key, indices in base_groups.items():
            b_acc, l_acc = accuracy(base, indices), accuracy(live, live_groups[key])
            b_val, l_val = mean(base, indices), mean(live, live_groups[key])
            cut = 100 * (b_val - l_val) / b_val if b_val and l_val is not None else None
            rows.append([by, key, len(indices), b_acc, l_acc, l_acc - b_acc, b_val, l_val, cut])
    return Table(header, rows)


def output_dir(paths: Sequence[str | Path], out_dir: str | Path | None = None) -> Path:
    """Explicit ``out_dir``, else beside a single file, else the working directory."""
    if out_dir is not None:
        target = Path(out_dir)
    elif len(paths) == 1:
        target = Path(paths[0]).parent
    else:
        target = Path.cwd()
    target.mkdir(parents=True, exist_ok=True)
    if not target.stat().st_mode & 0o222:  # honoured even as root, who may write anyway
        raise AnalysisError(f"{target} is read-only (published data?); choose an --out_dir")
    return target


def describe(run: Run) -> str:
    """One printout line per file, including the failed records (counted as wrong)."""
    return f"{run.path}: {len(run.records)} records, {run.failed} failed (counted as wrong)"


def figure_prefix(runs: Sequence[Run]) -> str:
    """Name stem for copies in ``--res``: the run names joined by ``_vs_``."""
    return "_vs_".join(run.name for run in runs)


def add_common_arguments(parser: argparse.ArgumentParser, files_help: str = "output files (all.json)") -> None:
    """Options shared by the analysis scripts: the files and the output options.  Flags are
    snake_case like the solvers'; the earlier dashed spellings stay accepted."""
    parser.add_argument("files", nargs="+", metavar="FILE", help=files_help)
    add_output_arguments(parser)


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--out_dir``, ``--no_figures`` and ``--res``."""
    parser.add_argument("--out_dir", "--out-dir", default=None,
                        help="where to write CSVs and PNGs (default: beside a single file, else the working directory)")
    parser.add_argument("--no_figures", "--no-figures", action="store_true", help="write the CSVs only")
    parser.add_argument("--res", default=None, metavar="DIR", help="also copy the figures into DIR (e.g. res/)")


def add_compare_argument(parser: argparse.ArgumentParser) -> None:
    """``--compare`` of the by-length reports."""
    parser.add_argument("--compare", action="store_true",
                        help="with two files (baseline, LiveMind): also print and write comparison.csv")


def script_main(argv: list[str] | None, doc: str | None, analyze: Callable[[argparse.Namespace], Iterable[Path]],
                add_arguments: Callable[[argparse.ArgumentParser], None] = add_common_arguments) -> int:
    """The one ``main`` of the analysis scripts: parse ``argv`` with the script's docstring
    as help and its ``add_arguments``, then ``run_cli`` its ``analyze``."""
    parser = flags.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli(lambda: analyze(args))


def run_cli(body: Callable[[], Iterable[Path]]) -> int:
    """Run a script's body; list the files it wrote, or report bad input on one line (exit 2)."""
    try:
        with no_gc():  # short-lived scripts over big record lists (see analysis._no_gc)
            written = list(body())
    except AnalysisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. writing beside a read-only input: use --out_dir
        print(f"error: cannot write output ({exc}); choose another --out_dir", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


def length_main(argv: list[str] | None, doc: str | None, make_tables: Any, metric: str, column: str, figure_file: str,
                ylabel: str) -> int:
    """The whole ``main`` of ``analyze_time_info.py`` and ``analyze_batched.py``: the common
    arguments plus ``--compare``, then ``length_report``."""
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_common_arguments(parser)
        add_compare_argument(parser)

    return script_main(argv, doc, lambda args: length_report(args, make_tables, metric, column, figure_file, ylabel),
                       add_arguments)


def length_report(args: Any, make_tables: Any, metric: str, column: str, figure_file: str, ylabel: str) -> Iterator[Path]:
    """The shared body of ``analyze_time_info.py`` and ``analyze_batched.py``: tables by
    category and by length (+ the optional comparison and the by-length figure)."""
    if args.compare and len(args.files) != 2:
        raise AnalysisError("--compare needs exactly two files: BASELINE LIVEMIND")
    runs = load_runs(args.files)
    out = output_dir(args.files, args.out_dir)
    by_category, by_len = make_tables(runs)
    comparison = compare_table(runs[0], runs[1], metric) if args.compare else None
    for run in runs:
        print(describe(run))
    print(by_category.format())
    yield by_category.write_csv(out / "timeinfo_by_category.csv")
    yield by_len.write_csv(out / "timeinfo_by_len.csv")
    if comparison is not None:
        print(comparison.format())
        yield comparison.write_csv(out / "comparison.csv")
    if not args.no_figures:
        from .figures import length_figure

        yield from length_figure(by_len, column, [r.name for r in runs], out / figure_file,
                                 ylabel=ylabel, res_dir=args.res, prefix=figure_prefix(runs))
