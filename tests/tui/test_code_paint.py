"""Code blocks painted from Pygments' tokens: padding, folding, languages."""

from __future__ import annotations

from rich.style import Style
from rich.syntax import SyntaxTheme, TokenType

from termllm.tui.code_paint import CODE_PADDING, paint_code


class Marked(SyntaxTheme):
    """Keywords bold, everything on one background, so tests can see both."""

    def get_style_for_token(self, token_type: TokenType) -> Style:
        return Style(bold=token_type[:1] == ("Keyword",), bgcolor="blue")

    def get_background_style(self) -> Style:
        return Style(bgcolor="blue")


def test_code_is_padded_to_the_width_and_highlighted() -> None:
    painted = paint_code("def f():\n    return 1\n", "python", 30, Marked())
    rows, columns = CODE_PADDING
    assert [strip.text for strip in painted] == [
        " " * 30,
        " " * columns + "def f():".ljust(30 - columns),
        " " * columns + "    return 1".ljust(30 - columns),
        " " * 30,
    ][: 2 * rows + 2]
    assert all(strip.cell_length == 30 for strip in painted)
    keyword = next(s for s in painted[1] if s.text == "def")
    assert keyword.style is not None and keyword.style.bold
    assert all(s.style is not None and s.style.bgcolor is not None for s in painted[2])


def test_long_lines_fold_without_losing_a_character() -> None:
    line = "x = '" + "a" * 50 + "'"
    painted = paint_code(line, "python", 24, Marked())
    inner = 24 - 2 * CODE_PADDING[1]
    body = painted[CODE_PADDING[0] : -CODE_PADDING[0]]
    assert len(body) == -(-len(line) // inner)
    assert "".join(strip.text[CODE_PADDING[1] :].rstrip() for strip in body) == line


def test_an_unknown_language_and_tabs_are_plain_text() -> None:
    painted = paint_code("a\tb", "no-such-language", 20, Marked())
    assert painted[1].text.strip() == "a   b"
