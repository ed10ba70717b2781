"""The live session's command line: ``live_session.py`` is this module's ``main``.

The flags, model resolution, run configuration and controller are the solvers' own
(``cli.py``): ``--model``, ``--max_new_tokens`` (the final answer),
``--inference_max_new_tokens``, ``--prime_actions``/``--constrain_actions`` and the rest
mean the same and take the same per-model defaults, and the record saves the same run
configuration (model entry, versions, ``config_id``) as ``run_solver.py``.  On top come
the live session's own defaults (the UA-SPI layout, the ``latest`` schedule, prefix KV
reuse on) and flags: the replay file, keyboard options, the baseline comparison and the
terminal output.  The session itself is ``live.py``.
"""

from __future__ import annotations

import argparse
import codecs
import json
import logging
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

from . import cli, flags
from .clock import OPTIONS_ARRIVALS, PAPER_SECONDS_PER_CHAR
from .data import DataError, format_options
from .faults import EXIT_TEMPFAIL
from .live import LiveEvent, LiveResult, LiveSession, replay, run_baseline
from .methods.cot import CoTController
from .methods.livemind import LiveMindController
from .models.base import BackendUnavailable, error_line
from .records import build_record
from .tasks.resolve import replay_row

_OPTION_LINE = re.compile(r"^\s*(?:\(([A-J])\)|([A-J])[.)])\s*:?\s*(.+?)\s*$")
_OPTIONS_HEADER = re.compile(r"^\s*options( are)?\s*:?\s*$", re.I)


def parse_args(argv: list[str] | None, description: str = "Live LiveMind session in the terminal") -> argparse.Namespace:
    p = flags.ArgumentParser(description=description)
    cli.add_common_args(p, skip=cli.NOT_LIVE)
    cli.add_session_args(p)
    add = p.add_argument
    add("--replay", default=None, metavar="FILE",
        help="type this question (JSON or text; with --task, a row of the task's data file) instead of reading the keyboard")
    add("--index", type=int, default=0, help="which question of a JSON list to replay (default 0)")
    add("--typing_speed", type=float, default=PAPER_SECONDS_PER_CHAR, help=f"replay: seconds per character (default {PAPER_SECONDS_PER_CHAR:g})")
    add("--options_arrival", default="typed", choices=OPTIONS_ARRIVALS, help="replay: options typed (default) or instant")
    add("--options", default=None, help="keyboard input: options separated by '|'")
    add("--baseline", action="store_true", help="also run the CoT baseline on the complete question and compare")
    add("--no_stream", action="store_true", help="print the final answer when it is done")
    add("--quiet", action="store_true", help="replay: do not echo the typed text")
    add("--output_file", default=None, help="write the session's record (JSON) here")
    return p.parse_args(argv)


# --------------------------------------------------------------------------- input files


def load_replay(path: str, index: int = 0) -> dict[str, Any]:
    """``{"question", "options", "answer"}`` from a JSON or plain-text replay file."""
    file = Path(path)
    if not file.is_file():
        raise cli.UsageError(f"replay file not found: {file}")
    text = file.read_text(encoding="utf-8")
    if file.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise cli.UsageError(f"cannot parse replay file {file}: {exc}") from None
        if isinstance(data, list):
            if not 0 <= index < len(data):
                raise cli.UsageError(f"--index {index} is outside the {len(data)} questions of {file}")
            data = data[index]
        if not isinstance(data, dict) or not isinstance(data.get("question"), str) or not data["question"].strip():
            raise cli.UsageError(f"replay file {file}: need an object with a non-empty 'question' string")
        options = data.get("options") or []
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise cli.UsageError(f"replay file {file}: 'options' must be a list of strings")
        return {"question": data["question"], "options": options, "answer": data.get("answer")}
    question, options = [], []
    for line in text.splitlines():
        match = _OPTION_LINE.match(line)
        if match and (match.group(1) or match.group(2)) == "ABCDEFGHIJ"[len(options)]:
            options.append(match.group(3))
        elif line.strip() and not _OPTIONS_HEADER.match(line):
            question.append(line.strip())
    if not question:
        raise cli.UsageError(f"replay file {file} has no question text")
    return {"question": " ".join(question), "options": options, "answer": None}


# --------------------------------------------------------------------------- terminal output


class Terminal:
    """Writes the typed line, model actions above it, and the final answer (thread-safe)."""

    def __init__(self, echo: bool = True) -> None:
        self.lock = threading.Lock()
        self.line = ""
        self.echo_on = echo
        self.typing = True

    def write(self, text: str) -> None:
        with self.lock:
            sys.stdout.write(text)
            sys.stdout.flush()

    def typed(self, text: str) -> None:
        if not self.echo_on:
            return
        with self.lock:
            if text.startswith("\n"):
                self.line = ""
            for ch in text:
                if ch == "\b":
                    self.line = self.line[:-1]
                    sys.stdout.write("\b \b")
                else:
                    self.line = "" if ch == "\n" else self.line + ch
                    sys.stdout.write(ch)
            sys.stdout.flush()

    def note(self, text: str) -> None:
        """A line above the one being typed."""
        with self.lock:
            if self.typing and self.echo_on:
                sys.stdout.write("\r\x1b[K" + text + "\n" + self.line)
            else:
                sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def event(self, event: LiveEvent) -> None:
        if event.kind in ("action", "cancelled") and event.step is not None and event.step.kind != "inference":
            step = event.step  # another method's call while typing: a speculation, a thought...
            what = f"{step.kind}" + (f" ({step.note})" if step.note else "") + (f": {event.text[:80]!r}" if event.text else "")
            self.note(f"  {event.time:7.2f}s  model, {step.segments} segment(s): {what}")
        elif event.kind in ("action", "cancelled"):
            step = event.step
            what = "cancelled (input complete)" if event.kind == "cancelled" else (
                f"[{step.action_name}] {step.action.content}" if step.action and not step.action.is_wait
                else f"[{step.action_name}]" + ("" if step.action else f" {event.text[:80]!r}"))
            self.note(f"  {event.time:7.2f}s  model, {step.segments} segment(s): {what}")
        elif event.kind == "error":
            self.note(f"  {event.time:7.2f}s  inference call failed: {event.text}")
        elif event.kind == "unavailable":
            self.note(f"  {event.time:7.2f}s  backend unavailable: {event.text}")
        elif event.kind == "final_start":
            self.typing = False
            self.write("\n\nanswer: " + event.text)
        elif event.kind == "answer_restart":
            self.write(f"\n[backend failed mid-answer ({event.text[:80]}); the answer restarts]\nanswer: ")
        elif event.kind in ("token", "final"):
            self.write(event.text)


# --------------------------------------------------------------------------- keyboard input


def read_keyboard(session: LiveSession, term: Terminal) -> str:
    """Feed the session from stdin until Enter (TTY) or an empty line / EOF (pipe)."""
    if not sys.stdin.isatty():
        text = ""
        for line in sys.stdin:
            if not line.strip():
                break
            text = (text + " " + line.strip()) if text else line.strip()
            session.type(text)
        return text
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)  # termios, not a getattr probe
    decoder = codecs.getincrementaldecoder("utf-8")()
    text = ""
    term.write("> ")
    term.line = ""
    try:
        tty.setcbreak(fd)
        while True:
            chunk = os.read(fd, 1)
            if not chunk or chunk == b"\x04":
                break
            for ch in decoder.decode(chunk):
                if ch in "\r\n":
                    return text
                if ch in "\x7f\b":
                    if len(text) > session.tracker.consumed:  # completed sentences are final
                        text = text[:-1]
                        term.typed("\b")
                elif ch.isprintable():
                    text += ch
                    term.typed(ch)
                    session.type(text)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    return text


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None, description: str = "Live LiveMind session in the terminal") -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv, description)
    if (code := cli.list_models(args)) is not None:
        return code
    try:
        setup = cli.validate(args, "live")
        if args.replay and args.task:  # a row of the task's data file, scored by the task
            item = replay_row(setup.task, args.index)
        else:
            item = load_replay(args.replay, args.index) if args.replay else None
        options = item["options"] if item else [o.strip() for o in (args.options or "").split("|") if o.strip()]
        options_text = format_options(options) if options else ""
        if args.final_answer == "letter" and not options:
            raise cli.UsageError("--final_answer letter needs options (--options or a replay file with options)")
        print(f"loading {args.model} ...", file=sys.stderr)
        controller, baseline = cli.build_session(setup, prefix_cache=args.prefix_cache, baseline=args.baseline)
    except (cli.UsageError, DataError) as exc:
        return cli.fail(str(exc))
    try:
        return _run(args, setup, controller, baseline, item, options, options_text)
    except BackendUnavailable as exc:  # away longer than --max_outage: one line, as the solvers
        print(f"\nerror: backend unavailable: {error_line(exc)}; the session stopped", file=sys.stderr)
        return EXIT_TEMPFAIL


def _run(args: argparse.Namespace, setup: cli.Setup, controller: LiveMindController, baseline: CoTController | None,
         item: dict | None, options: list[str], options_text: str) -> int:
    """The session itself, once the models are loaded."""
    term = Terminal(echo=not args.quiet)
    session = LiveSession(controller, options_text, len(options), schedule=args.schedule,
                          cancel_on_complete=args.cancel_on_complete, on_event=term.event, stream=not args.no_stream)
    if item:
        print(f"replaying {args.replay} at {args.typing_speed} s/char ({args.prompt_format}, schedule {args.schedule}"
              f"{', cancel on complete' if args.cancel_on_complete else ''})")
        term.write("> ")
        result = replay(session, item["question"], options_text, typing_speed=args.typing_speed,
                        options_arrival=args.options_arrival, echo=term.typed)
        question = item["question"]
    else:
        print("type your question; Enter ends it" + (f" (options: {', '.join(options)})" if options else ""))
        question = read_keyboard(session, term)
        if not question.strip():
            return cli.fail("empty question")
        result = session.complete(question)
    print()
    report(result, setup, question, options, item, baseline, options_text)
    return 0


def report(result: LiveResult, setup: cli.Setup, question: str, options: list[str], item: dict | None,
           baseline: CoTController | None, options_text: str) -> None:
    """Latency lines (and the baseline), plus the optional record file."""
    args = setup.args
    info = result.time_info
    how = "streamed" if result.streamed else "printed when done"
    print(f"latency: {info.latency:.2f} s from input complete to the end of the answer ({how}); "
          f"model still busy at input complete: {info.overhead_time:.2f} s; "
          f"{len(result.steps) - 1} {'inference ' if result.method == 'livemind' else ''}call(s) while typing, "
          f"total generation {info.total_gen_time:.2f} s")
    if result.error:
        print(f"final call failed: {result.error}", file=sys.stderr)
    extra: dict[str, Any] = {"config_id": setup.run.config_id, "live": True,
                             "input_complete": result.input_complete, "config": setup.config}
    if baseline is not None:
        step, seconds = run_baseline(baseline, question, options_text, len(options))
        print(f"baseline (CoT) latency: {seconds:.2f} s; {result.method} / baseline = {info.latency / seconds:.2f}")
        extra["baseline"] = {"latency": seconds, "solution": step.response, "prompt_tokens": step.completion.prompt_tokens,
                             "completion_tokens": step.completion.completion_tokens}
    if args.output_file:
        row = {"question_id": "live", "question": question, "options": options,
               "answer": (item or {}).get("answer"), "category": "live", "src": args.replay or "keyboard"}
        if setup.task is not None and setup.task.answer_kind is not None:  # scored as the task scores
            row = {**row, **(item or {}), "task": setup.task.name, "answer_kind": setup.task.answer_kind}
        record = build_record(row, result.steps, result.method, result.calls, info, extra)
        Path(args.output_file).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output_file).write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
        print(f"wrote {args.output_file}")
