"""Live Markdown for answers streamed to a terminal (imported only when stdout is one)."""

from __future__ import annotations

import re
import time

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown

_FENCE = re.compile(r"^[ \t]*(?:```|~~~)", re.MULTILINE)
# A blank line, or a fence line (group 1), in order of appearance.
_UNINDENTED_LINE = re.compile(r"\n(?=\S)")
_BLOCK_EVENTS = re.compile(r"\n[ \t]*\n|^[ \t]*(```|~~~)", re.MULTILINE)


class MarkdownWriter:
    """Live Markdown that never redraws what has scrolled away.

    Complete blocks (up to the last blank line outside a code fence) are printed once, above the
    live region, and only the block being written is redrawn: redrawing the whole answer per
    token would flicker and, once taller than the screen, print itself again. A block that alone
    outgrows the screen (a long code listing) is committed line by line, its fence reopened.
    """

    def __init__(self, console: Console, refresh_per_second: float = 12.0) -> None:
        self._console = console
        self._text = ""
        self._committed = 0
        self._reopen = ""
        self._interval = 1.0 / refresh_per_second
        self._last_draw = 0.0
        self._live = Live(console=console, auto_refresh=False, vertical_overflow="visible")
        self._live.start()

    def write(self, text: str) -> None:
        self._text += text
        now = time.monotonic()
        if now - self._last_draw >= self._interval:
            self._last_draw = now
            self._draw()

    def finish(self) -> None:
        self._live.update(self._pending(), refresh=True)
        self._live.stop()

    def _pending(self) -> Markdown:
        return Markdown(self._reopen + self._text[self._committed :])

    def _draw(self) -> None:
        split = _last_block_boundary(self._text, self._committed)
        if split > self._committed:
            self._commit(split, closing="")
            self._reopen = ""
        pending = self._text[self._committed :]
        live = self._pending()
        # Rendered, not source, lines: headings and lists take more rows than they have lines,
        # and a live region taller than the screen is what makes Rich repeat it.
        rows = len(self._console.render_lines(live, pad=False))
        too_tall = rows > max(4, self._console.height - 2)
        if "\n" in pending and too_tall:
            cut = self._committed + _line_cut(pending)
            opener = _open_fence(self._text, cut)
            self._commit(cut, closing="```" if opener else "")
            self._reopen = opener + "\n" if opener else ""
            live = self._pending()
        self._live.update(live, refresh=True)

    def _commit(self, end: int, closing: str) -> None:
        block = self._reopen + self._text[self._committed : end] + closing
        self._live.console.print(Markdown(block))
        self._committed = end


def _line_cut(pending: str) -> int:
    """Where to split a block that outgrew the screen: before its last unindented line.

    Cutting before an indented line would leave, say, a nested list item to be rendered on its
    own, where four spaces of indent make it a code block. Code inside a fence is cut at the last
    line end, since its fence is reopened.
    """
    unindented = [match.end() for match in _UNINDENTED_LINE.finditer(pending)]
    return unindented[-1] if unindented else pending.rfind("\n") + 1


def _fences(text: str, end: int) -> list[re.Match[str]]:
    return list(_FENCE.finditer(text, 0, end))


def _open_fence(text: str, position: int) -> str:
    """The opening line (e.g. "```python") of the code fence open at `position`, or ""."""
    fences = _fences(text, position)
    if len(fences) % 2 == 0:
        return ""
    opener = fences[-1]
    line_end = text.find("\n", opener.start())
    return text[opener.start() : line_end if line_end != -1 else position].strip()


def _last_block_boundary(text: str, start: int) -> int:
    """The end of the last blank line after `start` that lies outside any code fence."""
    boundary = start
    inside_fence = len(_fences(text, start)) % 2 == 1
    for match in _BLOCK_EVENTS.finditer(text, start):
        if match.group(1):
            inside_fence = not inside_fence
        elif not inside_fence:
            boundary = match.end()
    return boundary
