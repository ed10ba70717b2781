"""End-to-end check of the vLLM backend on a GPU.

vLLM cannot be installed where this toolkit is developed, so its mapping code is unit
tested with stand-ins (``tests/test_vllm_mapping.py``) and this script is the check a
user with vLLM runs once:

    pip install '.[vllm]'
    export LLAMA3_8B_PATH=/path/to/llama-3-8b-instruct-awq     # or a Hub id
    python scripts/check_vllm.py --model llama-3-8b
    python scripts/check_vllm.py --model llama-3-70b --assist_model llama-3-8b   # both on one GPU

It builds the model(s) from the configuration file exactly as the solvers do, then
checks, printing PASS/FAIL per item:

1. a plain greedy chat completion stops by itself at end-of-turn (``finish_reason``
   "stop", no ``<|eot_id|>`` text in the reply) and reports token counts;
2. greedy decoding is deterministic (the same request twice gives the same text);
3. response priming: with ``assistant_prefix="action "`` the reply continues the turn;
4. automatic prefix caching: a second prompt that extends the first reports
   ``cached_tokens > 0``;
5. a batch of several requests is answered in order by one call;
6. ``choices`` returns exactly one of the choices (structured outputs);
7. with ``--assist_model``, the second model loads beside the first (memory fractions)
   and answers.

Exit status 0 when every check passes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live_mind import flags  # noqa: E402
from live_mind.models import registry  # noqa: E402
from live_mind.models.base import ChatRequest, ModelError  # noqa: E402
from live_mind.models.capabilities import backend_class  # noqa: E402
from live_mind.models.vllm import VLLMChatModel  # noqa: E402

SYSTEM = {"role": "system", "content": "You are a careful assistant. Answer briefly."}
QUESTION = ("A train leaves at 9:00 and travels 180 km at a constant 60 km/h. "
            "At what time does it arrive?")


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def check(self, label: str, ok: bool, detail: str = "") -> None:
        print(f"{'PASS' if ok else 'FAIL'}  {label}{'  -- ' + detail if detail else ''}", flush=True)
        if not ok:
            self.failed.append(label)


def run_checks(model, checks: Checks, max_new_tokens: int) -> None:
    user = {"role": "user", "content": QUESTION}
    plain = ChatRequest([SYSTEM, user], max_new_tokens=max_new_tokens)
    [a] = model.complete([plain])
    print(f"      reply: {a.text[:160]!r}")
    checks.check("greedy reply stops at end of turn", a.finish_reason == "stop" and "<|eot_id|>" not in a.text,
                 f"finish_reason={a.finish_reason}, {a.prompt_tokens} prompt + {a.completion_tokens} new tokens, "
                 f"{a.seconds:.2f} s")
    [b] = model.complete([plain])
    checks.check("deterministic (same text twice)", a.text == b.text)
    checks.check("prefix cache hit on the repeated prompt", b.cached_tokens > 0, f"cached_tokens={b.cached_tokens}")

    [primed] = model.complete([ChatRequest([SYSTEM, user], max_new_tokens=32, assistant_prefix="action ")])
    checks.check("response priming continues the turn", bool(primed.text.strip()), repr(primed.text[:80]))

    longer = ChatRequest([SYSTEM, {"role": "user", "content": QUESTION + " Give the answer as HH:MM."}],
                         max_new_tokens=16)
    [c] = model.complete([longer])
    checks.check("extended prompt reuses the cached prefix", c.cached_tokens > 0,
                 f"cached_tokens={c.cached_tokens} of {c.prompt_tokens}")

    batch = [ChatRequest([SYSTEM, {"role": "user", "content": f"Reply with the number {n} only."}], max_new_tokens=8)
             for n in (11, 22, 33, 44)]
    start = time.perf_counter()
    outs = model.complete(batch)
    wall = time.perf_counter() - start
    in_order = all(str(n) in out.text for n, out in zip((11, 22, 33, 44), outs))
    checks.check("batch of 4 in one call, in order", len(outs) == 4 and in_order,
                 f"{[o.text.strip()[:12] for o in outs]}, {wall:.2f} s")

    try:
        [choice] = model.complete([ChatRequest([SYSTEM, {"role": "user", "content": QUESTION + " (A) 11:00 (B) 12:00"}],
                                               choices=["A", "B"])])
        checks.check("choices constrain the answer", choice.text in ("A", "B"), repr(choice.text))
    except ModelError as exc:
        checks.check("choices constrain the answer", False, str(exc))


def main(argv: list[str] | None = None) -> int:
    parser = flags.ArgumentParser(description="Check the vLLM backend end to end on a GPU.")
    parser.add_argument("--model", default="llama-3-8b", help="vLLM entry of the model configuration")
    parser.add_argument("--assist_model", default=None, help="a second vLLM entry loaded in the same process")
    parser.add_argument("--models", default=None, help="model configuration TOML")
    parser.add_argument("--max_new_tokens", type=int, default=256)
    args = parser.parse_args(argv)
    checks = Checks()
    try:
        names = [args.model] + ([args.assist_model] if args.assist_model else [])
        specs = [registry.resolve(name, args.models) for name in names]
        for spec in specs:
            if backend_class(spec.backend) is not VLLMChatModel:
                print(f"error: {spec.name} uses the {spec.backend} backend, not vllm", file=sys.stderr)
                return 2
            registry.check_available(spec)
    except registry.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for spec in specs:
        start = time.perf_counter()
        model = registry.build(spec)
        print(f"loaded {spec.name} in {time.perf_counter() - start:.1f} s "
              f"(gpu_memory_utilization={spec.params.get('gpu_memory_utilization')})")
        run_checks(model, checks, args.max_new_tokens)
    print("all checks passed" if not checks.failed else f"{len(checks.failed)} check(s) failed: {checks.failed}")
    return 0 if not checks.failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
