"""Text selected with the mouse, drawn over a line the widget painted itself (the line-based
widgets draw their own strips, so Textual's own selection highlighting does not reach them)."""

from __future__ import annotations

from textual.strip import Strip
from textual.widget import Widget


def with_selection(widget: Widget, strip: Strip, span: tuple[int, int]) -> Strip:
    """`strip` with the cells of `span` (end -1: to the end of the line) in the selection style."""
    start, end = span
    end = strip.cell_length if end == -1 else end
    before, chosen, after = strip.divide([start, end, strip.cell_length])
    chosen = chosen.apply_style(widget.screen.get_component_rich_style("screen--selection"))
    return Strip.join([before, chosen, after])
