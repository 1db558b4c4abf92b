"""The reasoning a thinking model wrote before an answer: a section above the answer that
streams as plain, muted text under a header counting tokens and time, folds to its header when
the answer starts, and opens again with a key or a click on the header.

Like the answer (widgets/answer.py) it is one line-based widget: appending wraps only the last
line again, a frame refreshes only the lines that changed, and a folded section (every saved
one, as a conversation opens) wraps nothing until it is first opened.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from textual import events
from textual.geometry import Region, Size
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget

from termllm.safe_text import text_block
from termllm.tui.reasoning_lines import ReasoningLines
from termllm.tui.selection_paint import with_selection

# While it streams, the section grows this many lines at a time (as an answer does): each
# change of height lays the screen out again.
GROWTH_STEP = 8
OPEN_MARK = "▾"
FOLDED_MARK = "▸"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def counted(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


class ThinkingView(Widget):
    """The reasoning of one answer. A saved one starts folded; a streaming one starts open.
    `tokens` is what it took (0: not known), `seconds` how long (None: not known)."""

    ALLOW_SELECT = True
    COMPONENT_CLASSES: ClassVar[set[str]] = {"thinking--header"}
    DEFAULT_CSS = """
    ThinkingView {
        height: auto;
    }
    ThinkingView > .thinking--header {
        text-style: italic;
    }
    """

    def __init__(
        self,
        reasoning: str = "",
        *,
        streaming: bool = False,
        tokens: int = 0,
        seconds: float | None = None,
    ) -> None:
        super().__init__(classes="thinking")
        self._source = reasoning
        # The part of the source given to the lines: the rest is wrapped when first drawn open.
        self._fed = 0
        self._lines = ReasoningLines()
        self._streaming = streaming
        self._open = streaming
        self._tokens = tokens
        self._seconds = seconds
        self._words: int | None = None

    @property
    def text(self) -> str:
        """The reasoning, as far as it has arrived."""
        return self._source

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def is_streaming(self) -> bool:
        return self._streaming

    @property
    def header(self) -> str:
        mark = OPEN_MARK if self._open else FOLDED_MARK
        seconds = duration(self._seconds or 0.0)
        if self._streaming:
            return f"Thinking… {counted(self._tokens, 'token')} · {seconds} {mark}"
        if self._seconds is not None:
            return f"Thought for {seconds} · {counted(self._tokens, 'token')} {mark}"
        # Saved reasoning: its time was not kept; an imported one may lack its token count.
        if self._tokens:
            return f"Thought · {counted(self._tokens, 'token')} {mark}"
        if self._words is None:
            self._words = len(self._source.split())
        return f"Thought · {counted(self._words, 'word')} {mark}"

    def stream(self, text: str, tokens: int, seconds: float) -> None:
        """The reasoning that arrived since the last frame (maybe none: the clock still moves),
        with the tokens and time so far."""
        self._tokens, self._seconds = tokens, seconds
        self._source += text
        width = self.size.width
        if text and self._open and width:
            self._lines.set_width(width)
            height, changed_from = self._height(), self._lines.open_start + 1
            self._feed()
            new_height = self._height()
            if new_height != height:
                self.refresh(layout=True)
            else:
                # Only the lines from the open paragraph's last one down change.
                self.refresh(Region(0, changed_from, width, new_height - changed_from))
        elif text and self._open:
            self.refresh(layout=True)
        self.refresh(Region(0, 0, width, 1))

    def end(self, tokens: int, seconds: float, *, fold: bool) -> None:
        """The reasoning is over (the answer starts, or the turn ended without one)."""
        self._streaming = False
        self._tokens, self._seconds = tokens, seconds
        if fold:
            self._open = False
        self.refresh(layout=True)

    def settle(self, reasoning: str, tokens: int) -> None:
        """The reasoning as saved (trimmed) and its tokens as the engine counted them (0: not
        counted), where they differ from what streamed."""
        if tokens and tokens != self._tokens:
            self._tokens = tokens
            self.refresh(Region(0, 0, self.size.width, 1))
        if reasoning != self._source:
            self._source, self._fed, self._words = reasoning, 0, None
            self._lines = ReasoningLines()
            self.refresh(layout=True)

    def toggle(self) -> None:
        self._open = not self._open
        self.refresh(layout=True)
        if self._open:
            # Its start in view, once it is laid out at its new height.
            self.call_after_refresh(self._show_start)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y == 0:
            event.stop()
            self.toggle()

    # Drawing ---------------------------------------------------------------------------------

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if self._open:
            self._lines.set_width(width)
            self._feed()
        return self._height()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.visual_style.rich_style
        if y == 0:
            style = self.get_component_rich_style("thinking--header", partial=True)
            strip = Strip([Segment(self.header, style)])
        elif self._open:
            strip = Strip([Segment(self._lines.line(y - 1))])
        else:
            strip = Strip.blank(width)
        strip = strip.crop_extend(0, width, None).apply_style(base)
        selection = self.text_selection
        if selection is not None and (span := selection.get_span(y)) is not None:
            strip = with_selection(self, strip, span)
        return strip.apply_offsets(0, y)

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        lines = [self.header]
        if self._open:
            lines += [self._lines.line(y) for y in range(self._lines.line_count)]
        return selection.extract("\n".join(lines)), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()

    def _feed(self) -> None:
        """Give the lines the text that arrived since they were last given some, made safe to
        draw (model output can hold escape codes; a tab would move the terminal's cursor)."""
        if self._fed < len(self._source):
            fresh = self._source[self._fed :]
            if not self._fed:
                fresh = fresh.lstrip("\n")  # a template's opening "<think>\n" leaves one
            self._lines.append(text_block(fresh).replace("\t", "    "))
            self._fed = len(self._source)

    def _height(self) -> int:
        """The header, and when open the reasoning's lines and a blank line to part it from
        the answer."""
        if not self._open:
            return 1
        lines = self._lines.line_count + 1
        if self._streaming:
            lines = -(-lines // GROWTH_STEP) * GROWTH_STEP
        return 1 + lines

    def _show_start(self) -> None:
        parent = self.parent
        tall = isinstance(parent, Widget) and self.outer_size.height > parent.size.height
        self.scroll_visible(animate=False, top=tall)
