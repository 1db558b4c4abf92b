"""Writing an answer to stdout as it streams; piped output is the raw text."""

from __future__ import annotations

import sys
from typing import Protocol


class AnswerWriter(Protocol):
    def write(self, text: str) -> None: ...

    def finish(self) -> None: ...


class PlainWriter:
    """The answer as produced, flushed per chunk so pipes see it at once; ends with a newline."""

    def __init__(self) -> None:
        self._ends_with_newline = True

    def write(self, text: str) -> None:
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
            self._ends_with_newline = text.endswith("\n")

    def finish(self) -> None:
        if not self._ends_with_newline:
            sys.stdout.write("\n")
        sys.stdout.flush()
