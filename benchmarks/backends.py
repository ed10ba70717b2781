"""CPU backend benchmark: decode speed and final-step latency.

Runs the same LiveMind-shaped prompts through each CPU backend of the embedded
SmolLM2-135M model -- transformers (``smollm2-135m``), llama.cpp in process
(``smollm2-135m-llamacpp``) and a llama.cpp server through the OpenAI-compatible
backend (``smollm2-135m-server``; started here on a free loopback port unless
``LIVEMIND_SERVER_URL`` points at one) -- and prints one table.

Measurements, per backend, over the bundled sample questions:

* **decode tokens/s**: the final-step request generating up to ``--max_new_tokens``
  tokens and the same request generating one token; ``(n - 1) / (t_n - t_1)`` removes prefill and
  overheads.  Each request starts with a fresh nonce so no backend reuses a cached
  prompt between the two timings.
* **prefill tokens/s**: prompt tokens / ``t_1``.
* **final-step latency**: the LiveMind output call after the question is complete
  (the v1 output prompt with one earlier inference), right after the inference call
  on the same question, greedy, at most ``--final_tokens`` new tokens -- the latency
  the user sees once the options are typed (paper §4, "latency").  Its mean generated
  tokens are printed beside it, because latency is dominated by answer length.

All backends run with ``OMP_WAIT_POLICY=PASSIVE`` (unless set otherwise) and the same
thread count.  The vLLM CPU entry (``smollm2-135m-vllm``) joins the table when vLLM is
installed; it sets its own threads.

``--batched ENTRY ...`` adds a second table: questions per second of
``run_batch_solver.py --use_lm`` on the 14 sample questions for each entry (one lockstep
batch; time from the loaded model to the last record, as the script prints it), and each
entry's speed-up over the first one.

Usage: ``python benchmarks/backends.py [--threads 2] [--num_questions 4] [--batched smollm2-135m smollm2-135m-vllm]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Same thread-wait policy for torch and llama.cpp (see llamacpp.py): spinning OpenMP
# workers make timings on a shared or small machine meaningless.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from live_mind import flags  # noqa: E402
from live_mind.actions import Action  # noqa: E402
from live_mind.data import format_options, load_sample_questions  # noqa: E402
from live_mind.models import registry  # noqa: E402
from live_mind.models.base import ChatRequest  # noqa: E402
from live_mind.models.capabilities import capabilities  # noqa: E402
from live_mind.prompts import PromptSet, inference_messages, output_messages  # noqa: E402
from live_mind.segment import split_sentences  # noqa: E402

DEFAULT_ENTRIES = ("smollm2-135m", "smollm2-135m-llamacpp", "smollm2-135m-server") + (
    ("smollm2-135m-vllm",) if importlib.util.find_spec("vllm") else ())
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    name: str
    backend: str
    load_s: float
    prefill_tps: float
    decode_tps: float
    final_s: float
    final_tokens: float


def _with_nonce(messages: list[dict], nonce: str) -> list[dict]:
    first = dict(messages[0])
    first["content"] = f"[{nonce}] " + first["content"]
    return [first, *messages[1:]]


def _prompts(questions: int) -> list[tuple[list[dict], list[dict]]]:
    """(last inference messages, final output messages) per sample question."""
    prompts, allowed = PromptSet(), ("background", "inference", "hypothesize", "wait")
    pairs = []
    for row in load_sample_questions()[:questions]:
        problem = row["question"]
        partial = " ".join(split_sentences(problem)[:-1]) or problem
        earlier = [Action("background", "The problem asks to choose the correct option.", "strict")]
        pairs.append((inference_messages(partial, earlier, allowed, prompts),
                      output_messages(problem, format_options(row["options"]), earlier, prompts)))
    return pairs


def start_server(threads: int) -> tuple[subprocess.Popen, str]:
    """A llama.cpp server on a free loopback port with the embedded model."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gguf = registry.gguf_location("embedded")
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
               "--port", str(port), "--n_threads", str(threads), "--n_ctx", "4096", "--verbose", "False"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama.cpp server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.5)
    process.terminate()
    raise RuntimeError("llama.cpp server did not become ready in 90 s")


def measure(name: str, args: argparse.Namespace) -> Row:
    spec = registry.resolve(name, args.models)
    option = capabilities(spec).threads_option
    overrides = {option: args.threads} if option else {}
    start = time.perf_counter()
    model = registry.build(spec, **overrides)
    load_s = time.perf_counter() - start
    pairs = _prompts(args.num_questions)
    model.complete([ChatRequest(pairs[0][0], max_new_tokens=4)])  # warm-up
    prefill, decode, finals, final_tokens = [], [], [], []
    for i, (inference, final) in enumerate(pairs):
        one = model.complete([ChatRequest(_with_nonce(final, f"a{i}"), max_new_tokens=1)])[0]
        full = model.complete([ChatRequest(_with_nonce(final, f"b{i}"), max_new_tokens=args.max_new_tokens)])[0]
        if args.verbose:
            print(f"{name} q{i}: 1 token {one.seconds:.2f}s ({one.prompt_tokens} prompt tokens), "
                  f"{full.completion_tokens} tokens {full.seconds:.2f}s", file=sys.stderr)
        prefill.append(one.prompt_tokens / one.seconds)
        if full.completion_tokens > 1 and full.seconds > one.seconds:
            decode.append((full.completion_tokens - 1) / (full.seconds - one.seconds))
        model.complete([ChatRequest(inference, max_new_tokens=args.max_new_tokens)])
        answer = model.complete([ChatRequest(final, max_new_tokens=args.final_tokens)])[0]
        finals.append(answer.seconds)
        final_tokens.append(answer.completion_tokens)
    return Row(name, spec.backend, load_s, statistics.median(prefill), statistics.median(decode),
               statistics.median(finals), statistics.mean(final_tokens))


def table(rows: list[Row], args: argparse.Namespace) -> str:
    lines = [
        f"threads={args.threads}, questions={args.num_questions}, decode max_new_tokens={args.max_new_tokens}, "
        f"final max_new_tokens={args.final_tokens}, load average before={args.load_before}",
        "",
        "| model entry | backend | load s | prefill tok/s | decode tok/s | final-step latency s (median) | final tokens (mean) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r.name} | {r.backend} | {r.load_s:.1f} | {r.prefill_tps:.0f} | {r.decode_tps:.1f} "
                     f"| {r.final_s:.2f} | {r.final_tokens:.0f} |")
    return "\n".join(lines)


def batched_speed(name: str, args: argparse.Namespace) -> tuple[float, float, str]:
    """(questions/s, seconds, summary line) of the batched solver on the sample set."""
    with_models = ["--models", args.models] if args.models else []
    command = [sys.executable, str(REPO / "run_batch_solver.py"), "--use_lm", "--model", name, *with_models,
               "--batch_size", "14", "--output_file", str(Path(args.workdir) / name / "all.json"), "--overwrite"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{name}: run_batch_solver.py failed ({done.returncode}): {done.stderr[-1500:]}")
    found = re.search(r"solved (\d+) questions in ([\d.]+) s after the model loaded: ([\d.]+) questions/s", done.stdout)
    if not found:
        raise RuntimeError(f"{name}: no timing line in the output:\n{done.stdout[-1500:]}")
    return float(found.group(3)), float(found.group(2)), found.group(0)


def batched_table(names: list[str], args: argparse.Namespace) -> str:
    results = [(name, *batched_speed(name, args)) for name in names]
    lines = ["", f"batched solver, 14 sample questions, one batch, load average before={args.load_before}", "",
             "| model entry | questions/s | seconds | speed-up |", "|---|---:|---:|---:|"]
    for name, qps, seconds, _ in results:
        lines.append(f"| {name} | {qps:.3f} | {seconds:.1f} | {qps / results[0][1]:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = flags.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=list(DEFAULT_ENTRIES), help="model entries to compare")
    parser.add_argument("--models", default=None, help="model configuration TOML")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for every backend")
    parser.add_argument("--num_questions", type=int, default=4, help="sample questions to use (1-14)")
    parser.add_argument("--max_new_tokens", type=int, default=64, help="tokens for the decode measurement")
    parser.add_argument("--final_tokens", type=int, default=128, help="token limit of the final step")
    parser.add_argument("--verbose", action="store_true", help="print every timing")
    parser.add_argument("--batched", nargs="*", default=None, metavar="ENTRY",
                        help="also time run_batch_solver.py --use_lm on the sample set for these entries")
    parser.add_argument("--skip_table", action="store_true", help="only the --batched table")
    parser.add_argument("--workdir", default="output/bench_backends", help="where the batched runs write")
    args = parser.parse_args(argv)
    if not 1 <= args.num_questions <= 14:
        parser.error("--num_questions must be between 1 and 14")
    args.load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    server = None
    try:
        if "smollm2-135m-server" in args.backends and not os.environ.get("LIVEMIND_SERVER_URL"):
            server, url = start_server(args.threads)
            os.environ["LIVEMIND_SERVER_URL"] = url
        if not args.skip_table:
            rows = []
            for name in args.backends:
                rows.append(measure(name, args))
                print(f"done: {name}", file=sys.stderr)
            print(table(rows, args), flush=True)
        if args.batched:
            print(batched_table(args.batched, args))
    except (registry.ConfigError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
