"""Code blocks painted straight from Pygments' tokens into lines of cells.

Rich's Syntax, which Rich's Markdown uses, builds, wraps and pads a Text object per line: about
3 ms for a 20-line block, paid again at every frame while a code block streams. Painting the
tokens directly costs a fraction of that. Code blocks nested in lists or quotes still go through
Rich (markdown_paint.py).
"""

from __future__ import annotations

from functools import lru_cache

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound
from rich.segment import Segment
from rich.syntax import SyntaxTheme
from textual.strip import Strip

# Padding of code blocks: (top and bottom, left and right), as in Textual's Markdown fences.
CODE_PADDING = (1, 2)
TAB_SIZE = 4


@lru_cache(maxsize=64)
def lexer_for(language: str) -> Lexer:
    options = {"tabsize": TAB_SIZE, "stripnl": False}
    try:
        return get_lexer_by_name(language or "text", **options)
    except ClassNotFound:
        return get_lexer_by_name("text", **options)


def paint_code(code: str, language: str, width: int, theme: SyntaxTheme) -> list[Strip]:
    """`code` highlighted for `language` (plain text when unknown) in lines `width` cells
    wide, long lines folded."""
    background = theme.get_background_style()
    rows, columns = CODE_PADDING
    inner = max(width - 2 * columns, 1)
    lines: list[list[Segment]] = [[]]
    for token_type, text in lexer_for(language).get_tokens(code.rstrip()):
        style = theme.get_style_for_token(token_type)
        first, *rest = text.split("\n")
        if first:
            lines[-1].append(Segment(first, style))
        lines.extend([Segment(part, style)] if part else [] for part in rest)
    if len(lines) > 1 and not lines[-1]:
        lines.pop()  # the lexer ends the code with a newline
    blank = Strip.blank(width, background)
    margin = Segment(" " * columns, background)
    painted = [blank] * rows
    for line in lines:
        length = Segment.get_line_length(line)
        pieces = (
            [line] if length <= inner else Segment.divide(line, range(inner, length + inner, inner))
        )
        for piece in pieces:
            fill = Segment(" " * (width - columns - Segment.get_line_length(piece)), background)
            painted.append(Strip([margin, *piece, fill]))
    return painted + [blank] * rows
