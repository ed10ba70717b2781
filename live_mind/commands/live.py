"""Live LiveMind session in the terminal.

Type a question: while you type, a background worker lets the model act on every
completed sentence and prints its actions; press Enter and the final answer streams,
followed by the measured wall-clock latency (end of the answer - your Enter), and with
``--baseline`` the chain-of-thought baseline's latency on the same question beside it.

Input:
* a terminal: read character by character (Backspace edits the unfinished sentence,
  Enter ends the question); ``--options "red|green|blue"`` adds multiple-choice options
  that arrive with the Enter;
* piped stdin: line by line, an empty line or end of input ends the question;
* ``--replay FILE``: types a question at ``--typing_speed`` seconds per character in real
  time -- JSON (an object with ``question`` and optional ``options``/``answer``, or a list
  of them, pick one with ``--index``) or plain text (option lines such as ``(A): red``,
  ``A. red`` or ``A) red``; every other line is the question).

The model flags are the solvers' (``--model``, ``--max_new_tokens`` for the final answer,
``--inference_max_new_tokens``, ``--prime_actions``, ``--constrain_actions``...) with
the same per-model defaults; the live session's own defaults are the UA-SPI layout, the
``latest`` schedule and prefix KV reuse.  Streaming and real cancellation work on the
backends that support them (transformers, llama.cpp, OpenAI-compatible servers); on
the others the answer is printed when done, and a cancelled call runs to its end with
its output dropped.  The code is in ``live_mind/live_cli.py`` and ``live_mind/live.py``.
"""

from __future__ import annotations

from live_mind import live_cli


def main(argv: list[str] | None = None) -> int:
    return live_cli.main(argv, description=__doc__.splitlines()[0])
