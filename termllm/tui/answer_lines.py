"""The lines of one answer: its top-level Markdown blocks, each painted when it is first seen.

A block is painted (markdown_paint.py) when a line of it is drawn, so the cost of a frame
follows what is on screen, not the length of the answer: a stream that runs ahead of the screen
catches up by parsing, and an answer opened from the history, or drawn again for a new theme or
width, paints only what is visible. Blocks not painted yet count with an estimated height until
they are; the idle painter (`paint_hidden`) makes them exact soon after.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from itertools import accumulate

from rich.cells import cell_len
from textual.strip import Strip

from termllm.tui.code_paint import CODE_PADDING
from termllm.tui.markdown_blocks import StreamedBlocks, split_blocks
from termllm.tui.markdown_paint import MarkdownPainter


class AnswerLines:
    """Sealed blocks, then the open block; one blank line between two blocks."""

    def __init__(self, text: str = "") -> None:
        self._blocks = StreamedBlocks(split_blocks(text))
        self._painter: MarkdownPainter | None = None
        self._width = 0
        self._painted: list[list[Strip] | None] = []
        self._heights: list[int] = []
        # The first line of each sealed block, then of the open block.
        self._starts: list[int] = [0]
        self._line_count = 0
        self._open_lines: list[Strip] = []

    @property
    def ready(self) -> bool:
        return self._painter is not None and self._width > 0

    def paint_with(self, painter: MarkdownPainter, width: int) -> bool:
        """Paint from now on with `painter` at `width`; what was painted before is forgotten.
        Returns whether that changed anything."""
        if painter is self._painter and width == self._width:
            return False
        if width != self._width:
            self._heights.clear()  # estimated again at the new width
        self._painter, self._width = painter, width
        self._painted = [None] * len(self._painted)
        self._update()
        return True

    def append(self, text: str) -> None:
        self._blocks.append(text)
        self._update()

    def end_with(self, final: list[str]) -> None:
        """The final blocks (the full text split at once, which can differ from the blocks
        split as the text arrived); blocks whose source is unchanged keep their lines."""
        streamed = self._blocks.sealed
        kept = 0
        while kept < min(len(final), len(streamed)) and final[kept] == streamed[kept]:
            kept += 1
        del self._painted[kept:]
        del self._heights[kept:]
        self._blocks = StreamedBlocks(final)
        self._update()

    @property
    def line_count(self) -> int:
        return self._line_count

    @property
    def open_start(self) -> int:
        """The first line of the open block (where the next text can change lines)."""
        return self._starts[-1]

    def line(self, y: int) -> tuple[Strip | None, bool]:
        """Line `y` (None: a blank line) and whether painting it changed the answer's height.
        A changed height takes effect at the next `update_layout`."""
        if not 0 <= y < self._line_count:
            return None, False
        index = bisect_right(self._starts, y) - 1
        offset = y - self._starts[index]
        if index == len(self._heights):
            lines = self._open_lines
            return (lines[offset] if offset < len(lines) else None), False
        lines, changed = self._paint(index)
        return (lines[offset] if offset < len(lines) else None), changed

    def update_layout(self) -> None:
        """Place the blocks with their heights as now known."""
        self._update(paint_open=False)

    def paint_hidden(self, deadline: float) -> bool:
        """Paint blocks not painted yet, the last first, until `deadline` (perf_counter);
        returns whether any height changed. Call `update_layout` after a change."""
        changed = False
        for index in range(len(self._painted) - 1, -1, -1):
            if time.perf_counter() >= deadline:
                break
            if self._painted[index] is None:
                changed = self._paint(index)[1] or changed
        return changed

    @property
    def fully_painted(self) -> bool:
        return self.ready and all(lines is not None for lines in self._painted)

    def all_lines(self) -> tuple[list[Strip | None], bool]:
        """Every line, and whether painting them changed the answer's height."""
        drawn = [self.line(y) for y in range(self.line_count)]
        return [line for line, _ in drawn], any(changed for _, changed in drawn)

    def _paint(self, index: int) -> tuple[list[Strip], bool]:
        lines = self._painted[index]
        if lines is not None or self._painter is None:
            return lines or [], False
        lines = self._painter.paint(self._blocks.sealed[index], self._width)
        self._painted[index] = lines
        changed = len(lines) != self._heights[index]
        self._heights[index] = len(lines)
        return lines, changed

    def _update(self, *, paint_open: bool = True) -> None:
        sealed = self._blocks.sealed
        if not self.ready:
            return
        for source in sealed[len(self._heights) :]:
            self._heights.append(estimate_height(source, self._width))
        self._painted.extend([None] * (len(sealed) - len(self._painted)))
        if paint_open:
            assert self._painter is not None
            self._open_lines = self._painter.paint(self._blocks.open, self._width)
        # Each sealed block is followed by a blank line, and so is the last unless the open
        # block has lines.
        self._starts = list(accumulate((height + 1 for height in self._heights), initial=0))
        open_start = self._starts[-1]
        self._line_count = (
            open_start + len(self._open_lines) if self._open_lines else max(open_start - 1, 0)
        )


def estimate_height(source: str, width: int) -> int:
    """Lines a block will probably take at `width`, without painting it."""
    lines = source.rstrip("\n").split("\n")
    if source.lstrip().startswith(("```", "~~~")):
        return len(lines) - 2 + 2 * CODE_PADDING[0]
    return sum(max(1, -(-cell_len(line) // max(width, 1))) for line in lines)
