"""A thinking model's reasoning as plain lines wrapped to a width, cheap to append to.

Reasoning streams at the model's pace and can run to thousands of tokens, so appending never
wraps what came before again: a paragraph that has ended keeps its lines, and of the one still
growing only its last line is wrapped again (greedy wrapping leaves the earlier lines as they
were when text is added at the end).
"""

from __future__ import annotations

import re

from rich.cells import cell_len, chop_cells

# A word with the spaces after it (and, at the start of a paragraph, the indentation before it).
_WORD = re.compile(r"\s*\S+\s*")


def line_starts(text: str, width: int, start: int = 0) -> list[int]:
    """Where each line of `text` (one paragraph: no line breaks) begins from `start` on, when
    wrapped at spaces to `width` cells; a word wider than a line is cut."""
    starts = [start]
    used = 0
    for match in _WORD.finditer(text, start):
        word = match.group()
        cells = cell_len(word.rstrip())
        if used and used + cells > width:
            starts.append(match.start())
            used = 0
        if cells > width:
            pieces = chop_cells(word.rstrip(), width)
            offset = match.start()
            for piece in pieces[:-1]:
                offset += len(piece)
                starts.append(offset)
            used = cell_len(word[offset - match.start() :])
        else:
            used += cell_len(word)
    return starts


class ReasoningLines:
    """Ended paragraphs' lines, then the open paragraph's (the text after the last line break)."""

    def __init__(self) -> None:
        self._paragraphs: list[str] = []
        self._sealed: list[str] = []
        self._open = ""
        self._open_starts = [0]
        self._width = 0

    @property
    def line_count(self) -> int:
        return len(self._sealed) + (len(self._open_starts) if self._open else 0)

    @property
    def open_start(self) -> int:
        """The first line the next text can change."""
        return len(self._sealed) + len(self._open_starts) - 1

    def set_width(self, width: int) -> bool:
        """Wrap at `width` from now on; returns whether that changed anything."""
        if width == self._width or width <= 0:
            return False
        self._width = width
        self._sealed = [
            line
            for paragraph in self._paragraphs
            for line in _lines(paragraph, line_starts(paragraph, width))
        ]
        self._open_starts = line_starts(self._open, width)
        return True

    def append(self, text: str) -> None:
        first, *rest = text.split("\n")
        self._open += first
        self._wrap_tail()
        for paragraph in rest:
            self._paragraphs.append(self._open)
            if self._width:
                self._sealed.extend(_lines(self._open, self._open_starts))
            self._open, self._open_starts = paragraph, [0]
            self._wrap_tail()

    def line(self, y: int) -> str:
        """Line `y`, without the spaces it ends with ("" past the end)."""
        if y < len(self._sealed):
            return self._sealed[y]
        index = y - len(self._sealed)
        if not self._open or not 0 <= index < len(self._open_starts):
            return ""
        starts = self._open_starts
        end = starts[index + 1] if index + 1 < len(starts) else len(self._open)
        return self._open[starts[index] : end].rstrip()

    def _wrap_tail(self) -> None:
        """Wrap the open paragraph again from its last line on."""
        if self._width:
            *kept, tail = self._open_starts
            self._open_starts = kept + line_starts(self._open, self._width, tail)


def _lines(paragraph: str, starts: list[int]) -> list[str]:
    ends = [*starts[1:], len(paragraph)]
    return [paragraph[start:end].rstrip() for start, end in zip(starts, ends, strict=True)]
