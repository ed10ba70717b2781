"""Showing a reply while it is generated (``ChatRequest.on_token``) and stopping it
(``ChatRequest.stop``): the helpers the streaming backends share (transformers,
llama.cpp, OpenAI-compatible servers, vLLM's async engine and sessions)."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from .base import ChatRequest, stop_requested


class TextStream:
    """Feeds ``ChatRequest.on_token`` from the growing raw text of one reply.

    ``update`` takes the whole raw text so far; ``held`` (whitespace held back by prefix
    healing) is not part of the reply and never shown.  Text ending in a broken UTF-8
    character (U+FFFD from a partial byte sequence) waits for the next token.
    ``finish`` shows whatever of the final text was not shown yet.
    """

    def __init__(self, on_token: Callable[[str], None] | None, held: str = "") -> None:
        self.on_token, self.held, self.shown = on_token, held, ""

    def update(self, raw: str) -> None:
        if self.on_token is None:
            return
        if self.held and not raw.startswith(self.held):
            if self.held.startswith(raw):
                return
            text = raw
        else:
            text = raw[len(self.held):]
        if text.endswith("\ufffd") or not text.startswith(self.shown) or text == self.shown:
            return
        self.on_token(text[len(self.shown):])
        self.shown = text

    def finish(self, text: str) -> None:
        if self.on_token is not None and text.startswith(self.shown) and text != self.shown:
            self.on_token(text[len(self.shown):])
            self.shown = text


def read_stream(
    chunks: Iterable[Any], request: ChatRequest, stream: TextStream, pieces_of: Callable[[Any], Iterable[tuple[str | None, str | None]]],
    shown_before: str = "",
) -> tuple[list[str], str | None]:
    """Read a streamed reply until it ends or the request's stop signal is set.

    ``pieces_of(chunk)`` gives the chunk's ``(text piece, finish reason)`` pairs; each
    chunk's text goes to ``stream`` after ``shown_before`` (text decoded before the
    stream started).  Returns the text pieces and the finish reason (``"cancelled"``
    when stopped); the chunk iterator is closed either way, which ends the generation
    (llama.cpp) or the HTTP response (OpenAI-compatible servers)."""
    pieces: list[str] = []
    finish = None
    try:
        for chunk in chunks:
            if stop_requested(request):
                finish = "cancelled"
                break
            for piece, reason in pieces_of(chunk):
                pieces.append(piece or "")
                finish = reason or finish
            stream.update(shown_before + "".join(pieces))
    finally:
        close = getattr(chunks, "close", None)  # a library's stream: a generator or an HTTP response can be closed
        if close is not None:
            close()
    return pieces, finish
