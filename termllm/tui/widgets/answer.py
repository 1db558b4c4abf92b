"""One answer, drawn from lines painted once per block rather than from a widget per block.

Textual's Markdown widget mounts a widget for every block; on each frame of a streaming answer
the compositor laid out and repainted all of them, a cost that grew with the answer (a
4,000-token answer stalled the event loop for 150 ms a frame). This is a single line-based
widget: blocks are painted when they are first drawn (answer_lines.py), only the open block is
painted again as text arrives, and drawing the screen copies the lines that are visible.
"""

from __future__ import annotations

import asyncio

from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.geometry import Region, Size
from textual.message import Message
from textual.selection import Selection
from textual.strip import Strip
from textual.style import Style
from textual.widget import Widget

from termllm.domain import FinishReason
from termllm.tui.answer_lines import AnswerLines
from termllm.tui.markdown_blocks import code_blocks, split_blocks
from termllm.tui.markdown_paint import painter_for
from termllm.tui.selection_paint import with_selection

ENDINGS = {
    FinishReason.CANCELLED: "cancelled",
    FinishReason.ERROR: "failed",
    FinishReason.LENGTH: "cut at the token limit",
}


GROWTH_STEP = 8
_READING = RichStyle(dim=True, italic=True)


class AnswerView(Widget):
    """One answer; while it streams, each frame's text is appended."""

    ALLOW_SELECT = True
    DEFAULT_CSS = """
    AnswerView {
        height: auto;
    }
    """

    class Unpainted(Message):
        """A finished answer has blocks that were never on screen: paint them when idle, so
        that their heights are exact before the user scrolls to them."""

    def __init__(
        self, text: str = "", finish_reason: str | None = None, error: str | None = None
    ) -> None:
        super().__init__(classes="message assistant")
        self._source = text
        self._lines = AnswerLines(text)
        self._finished = finish_reason is not None
        self._ending = ""
        self._alternative = ""
        self._reading = ""
        self._style_key: tuple[str, Style] | None = None
        self._relayout_pending = False
        # Lines as last drawn, by y: the painted line they came from and the styled strip.
        self._drawn: dict[int, tuple[Strip | None, Strip]] = {}
        self._drawn_key: tuple[int, RichStyle] | None = None
        self.set_ending(finish_reason, error)

    @property
    def source(self) -> str:
        """The answer's Markdown, as far as it has arrived."""
        return self._source

    def code_blocks(self) -> list[tuple[str, str]]:
        """(language, code) of each code block, in order."""
        return code_blocks(self._source)

    def add_fragment(self, fragment: str) -> None:
        if self._finished:
            return  # A batch that arrives after the final render is already in it.
        self._source += fragment
        height, changed_from = self._height(), self._lines.open_start
        self._lines.append(fragment)
        if not self._lines.ready:
            self.refresh(layout=True)
            return
        # Only the lines from the open block down change: the rest keep their drawn strips.
        new_height = self._height()
        changed = Region(0, changed_from, self.size.width, max(height, new_height) - changed_from)
        self.refresh(changed, layout=new_height != height)

    def show_reading(self, line: str | None) -> None:
        """Say how far reading the prompt got where the answer will be, until its first text
        arrives (None: say nothing)."""
        if (line or "") != self._reading:
            self._reading = line or ""
            self.refresh(layout=True)

    async def finish(self, content: str, finish_reason: str, error: str | None) -> None:
        """Split the final text once more in full: while streaming, blocks were split as the
        text arrived, and a full parse can split differently."""
        self._finished = True
        self._reading = ""
        self._source = content
        # Parsing a long answer takes tens of milliseconds: off the event loop.
        final = await asyncio.get_running_loop().run_in_executor(None, split_blocks, content)
        self._lines.end_with(final)
        self.refresh(layout=True)
        self.set_ending(finish_reason, error)
        self.post_message(self.Unpainted())

    @property
    def waits_for_painting(self) -> bool:
        """Finished, with blocks not painted yet."""
        return self._finished and self._lines.ready and not self._lines.fully_painted

    def paint_hidden(self, deadline: float) -> None:
        """Paint blocks that have not been on screen until `deadline` (perf_counter)."""
        if self._lines.paint_hidden(deadline):
            self._lines.update_layout()
            self.refresh(layout=True)

    def set_ending(self, finish_reason: str | None, error: str | None = None) -> None:
        ending = ENDINGS.get(FinishReason(finish_reason)) if finish_reason else None
        if ending is None:
            return
        self.add_class(f"ended-{finish_reason}")
        self._ending = f"{ending}: {error}" if error else ending
        self._show_subtitle()

    def set_alternative(self, label: str | None) -> None:
        self._alternative = label or ""
        self.set_class(label is not None, "branched")
        self._show_subtitle()

    def _show_subtitle(self) -> None:
        label = " · ".join(part for part in (self._ending, self._alternative) if part)
        # An ending draws a full border, and Textual spaces the label from its corner; the
        # bottom edge of a branched answer has no corner, so the label brings its own space.
        self.border_subtitle = label + " " if label and not self._ending else label

    # Drawing ---------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self._style_key is not None and self._style_key != self._current_style_key():
            self.refresh(layout=True)  # a new theme: painted again as it is drawn

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        key = self._current_style_key()
        self._style_key = key
        if self._lines.paint_with(painter_for(*key), width) and self._finished:
            self.post_message(self.Unpainted())
        return self._height()

    def _size_updated(
        self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True
    ) -> bool:
        # Textual lays the screen out once more whenever a widget's virtual size changes, for
        # its scrollbars. An answer never scrolls by itself: as it grows, that second layout
        # at every frame would only cost the model CPU time.
        return super()._size_updated(size, virtual_size, container_size, layout=False)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self._reading_shown:
            shown = Strip([Segment(self._reading, _READING)] if y == 0 else [])
            return shown.crop_extend(0, width, None).apply_style(self.visual_style.rich_style)
        line, height_changed = self._lines.line(y)
        if height_changed:
            self._relayout_soon()
        # Scrolling redraws every visible line, mostly unchanged: each is styled once.
        base = self.visual_style.rich_style  # cached, where `rich_style` is computed each time
        if (width, base) != self._drawn_key:
            self._drawn.clear()
            self._drawn_key = (width, base)
        selection = self.text_selection
        drawn = self._drawn.get(y)
        if drawn is not None and drawn[0] is line and selection is None:
            return drawn[1]
        strip = (line or Strip.blank(width)).crop_extend(0, width, None).apply_style(base)
        if selection is not None and (span := selection.get_span(y)) is not None:
            return with_selection(self, strip, span).apply_offsets(0, y)
        strip = strip.apply_offsets(0, y)
        self._drawn[y] = (line, strip)
        return strip

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        lines, height_changed = self._lines.all_lines()
        if height_changed:
            self._relayout_soon()
        text = "\n".join(line.text.rstrip() if line else "" for line in lines)
        return selection.extract(text), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()

    @property
    def _reading_shown(self) -> bool:
        return bool(self._reading) and not self._source

    def _height(self) -> int:
        """While it streams, the answer grows a few lines at a time: each change of height lays
        out the screen again and, with the view following the bottom, repaints all of it."""
        if self._reading_shown:
            return 1
        lines = self._lines.line_count
        return lines if self._finished else -(-lines // GROWTH_STEP) * GROWTH_STEP

    def _current_style_key(self) -> tuple[str, Style]:
        return (self.app.theme, self.visual_style)

    def _relayout_soon(self) -> None:
        """A block painted while drawing turned out taller or shorter than estimated: place
        the blocks again once this frame is drawn."""
        if not self._relayout_pending:
            self._relayout_pending = True
            self.call_after_refresh(self._relayout)

    def _relayout(self) -> None:
        self._relayout_pending = False
        self._lines.update_layout()
        self.refresh(layout=True)
