"""Simultaneous-inference methods side by side: the same questions, clock and model.

    python benchmarks/methods.py --methods livemind,cot,predgen,continuous \\
        --model qwen2.5-coder-0.5b --timing model --task tests/fixtures/quiz_task.toml \\
        --data_path tests/fixtures/quiz.jsonl --json out/methods.json

Every flag after the benchmark's own is the real-time solver's (``live-mind run``): each
method runs through it with ``--method NAME`` on the same selected questions, typing
clock and timing, one run after another (its records under ``--out_dir``, so a run can be
inspected or re-analysed).  The table gives, per method, latency after the complete input
(mean, p50, p95), accuracy with its 95 % interval, generated tokens per question (the
compute paid for the latency) and calls (``live_mind/analysis/methods.py``); the figure
plots accuracy against latency, one point per method.  Compare methods under a cost
profile (``--timing model`` or ``--timing PROFILE``): measured wall time on a shared
machine is noise.  Every method name is checked before any model loads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # a checkout run without installing the package
    sys.path.insert(0, str(ROOT))

from live_mind import cli, flags  # noqa: E402
from live_mind.analysis.methods import latency_accuracy_figure, methods_table  # noqa: E402
from live_mind.commands import run as solver  # noqa: E402


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = flags.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="livemind,cot,predgen,continuous", help="comma-separated method names")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the table (and run paths) as JSON")
    parser.add_argument("--figure", default=None, metavar="PNG", help="latency-accuracy plot (default: beside --json)")
    parser.add_argument("--out_dir", default="output/methods", help="where each method's run is written")
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> int:
    args, rest = parse_args(argv)
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not names:
        return cli.fail("--methods names no method")
    if any(flag in rest for flag in ("--method", "--use_lm", "--output_file")):
        return cli.fail("--method, --use_lm and --output_file are the benchmark's to set; give --methods and --out_dir")
    runs = {name: Path(args.out_dir) / name.replace(":", "_") / "all.json" for name in names}
    for name in names:  # every method and flag checked before any model loads
        try:
            cli.validate(solver.parse_args([*rest, "--method", name, "--output_file", str(runs[name]), "--overwrite"]),
                         "time_info")
        except cli.UsageError as exc:
            return cli.fail(f"--method {name}: {exc}")
    for name in names:
        print(f"== {name}", flush=True)
        code = solver.main([*rest, "--method", name, "--output_file", str(runs[name]), "--overwrite"])
        if code != 0:
            return code
    table = methods_table([(name, json.loads(runs[name].read_text())) for name in names])
    print(table.format())
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"argv": rest, "header": table.header, "rows": table.rows,
                                   "runs": {n: str(p) for n, p in runs.items()}}, indent=1) + "\n")
        print(f"wrote {out}")
    figure = args.figure or (str(Path(args.json).with_suffix(".png")) if args.json else None)
    if figure:
        print("wrote", *latency_accuracy_figure(table, figure))
    return 0


if __name__ == "__main__":
    sys.exit(main())
