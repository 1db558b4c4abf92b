"""Markdown blocks painted to lines of terminal cells, in the colours of the app's theme.

An answer is drawn from cached lines (see widgets/answer.py) rather than from a tree of Textual
Markdown widgets: Textual lays out and repaints every widget of a long answer on every frame,
which is what stalled the event loop while answers streamed. Rich renders one block at a time
here; its styles come from the theme's variables, and code is coloured with the same token
styles as Textual's own Markdown code blocks, so answers and the rest of the app look alike.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from functools import lru_cache
from typing import Protocol

from markdown_it.token import Token
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markdown import CodeBlock, Heading, Markdown
from rich.segment import Segment
from rich.style import Style as RichStyle
from rich.syntax import Syntax, SyntaxTheme, TokenType
from rich.theme import Theme as RichTheme
from textual.highlight import HighlightTheme
from textual.strip import Strip
from textual.style import Style

from termllm.tui.code_paint import paint_code
from termllm.tui.markdown_blocks import markdown_parser


class StyleResolver(Protocol):
    """Turns styles as Textual writes them ("bold $text-accent", "$text 60%"), each laid over
    the one before it, into one Rich style."""

    def __call__(self, *layers: str) -> RichStyle: ...


CODE_STYLE = "$code-foreground on $code-background"

# Rich's Markdown style names, in the theme's terms. Code blocks use the two variables the app
# adds to every theme (themes.py).
MARKDOWN_STYLES = {
    "markdown.paragraph": "",
    "markdown.text": "",
    "markdown.em": "italic",
    "markdown.emph": "italic",
    "markdown.strong": "bold",
    "markdown.code": "$text-warning on $warning-muted",
    "markdown.code_block": CODE_STYLE,
    "markdown.block_quote": "$text-secondary",
    "markdown.list": "$text-primary",
    "markdown.item": "",
    "markdown.item.bullet": "bold $text-primary",
    "markdown.item.number": "$text-primary",
    "markdown.hr": "$text-muted",
    "markdown.h1.border": "$text-primary",
    "markdown.h1": "bold $text-primary",
    "markdown.h2": "bold $text-primary",
    "markdown.h3": "bold $text-secondary",
    "markdown.h4": "bold $text-secondary",
    "markdown.h5": "bold $text-muted",
    "markdown.h6": "$text-muted",
    "markdown.h7": "$text-muted",
    "markdown.link": "$text-accent underline",
    "markdown.link_url": "$text-accent underline",
    "markdown.s": "strike",
    "markdown.table.border": "$text-muted",
    "markdown.table.header": "bold $text-primary",
    "markdown.kbd": "bold $text-accent",
}


class ThemedSyntax(SyntaxTheme):
    """Pygments tokens in the styles Textual's Markdown code blocks use, on the code background."""

    def __init__(self, resolve: StyleResolver) -> None:
        self._resolve = resolve
        self._styles: dict[TokenType, RichStyle] = {}
        self._background = resolve(CODE_STYLE)

    def get_style_for_token(self, token_type: TokenType) -> RichStyle:
        style = self._styles.get(token_type)
        if style is None:
            # A token without a style of its own takes its nearest ancestor's, as in Pygments.
            kind = tuple(token_type)
            while kind and kind not in HighlightTheme.STYLES:
                kind = kind[:-1]
            # Over the code block's colours, not the answer's.
            style = self._resolve(CODE_STYLE, HighlightTheme.STYLES.get(kind, ""))
            self._styles[token_type] = style
        return style

    def get_background_style(self) -> RichStyle:
        return self._background


class LeftHeading(Heading):
    """Every heading level left-aligned (Rich centres the first level)."""

    LEVEL_ALIGN = dict.fromkeys(Heading.LEVEL_ALIGN, "left")


class ThemedCode(CodeBlock):
    """A code block inside a list or quote, painted as top-level ones are (code_paint.py)."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        theme = (
            console.syntax_theme
            if isinstance(console, ThemedConsole)
            else Syntax.get_theme(self.theme)
        )
        for strip in paint_code(str(self.text), self.lexer_name, options.max_width, theme):
            yield from strip
            yield Segment.line()


class AnswerMarkdown(Markdown):
    """Rich's Markdown, parsed with one shared parser: Rich builds a parser for each document,
    which costs more than parsing a block."""

    def __init__(self, markup: str, parsed: list[Token]) -> None:
        self.markup = markup
        self.parsed = parsed
        self.code_theme = "default"  # unused: ThemedCode takes the console's syntax theme
        self.justify = None
        self.style = "none"
        self.hyperlinks = False
        self.inline_code_lexer = None
        self.inline_code_theme = self.code_theme

    elements = {  # noqa: RUF012 - Rich's own ClassVar
        **Markdown.elements,
        "heading_open": LeftHeading,
        "fence": ThemedCode,
        "code_block": ThemedCode,
    }


class ThemedConsole(Console):
    """A console that renders into memory, with the theme's Markdown and syntax styles."""

    def __init__(self, resolve: StyleResolver) -> None:
        styles = {name: resolve(style) for name, style in MARKDOWN_STYLES.items()}
        super().__init__(
            file=io.StringIO(),
            theme=RichTheme(styles),
            color_system="truecolor",
            force_terminal=True,
            legacy_windows=False,
            emoji=False,
            highlight=False,
        )
        self.syntax_theme = ThemedSyntax(resolve)


class MarkdownPainter:
    """Paints one top-level Markdown block at a time into strips of a given width."""

    def __init__(self, resolve: StyleResolver) -> None:
        self._console = ThemedConsole(resolve)

    def paint(self, source: str, width: int) -> list[Strip]:
        if width <= 0 or not source.strip():
            return []
        tokens = markdown_parser().parse(source)
        if len(tokens) == 1 and tokens[0].type in ("fence", "code_block"):
            language = tokens[0].info.partition(" ")[0]
            return paint_code(tokens[0].content, language, width, self._console.syntax_theme)
        options = self._console.options.update(width=width, height=None)
        lines = self._console.render_lines(AnswerMarkdown(source, tokens), options, pad=False)
        return [Strip(line) for line in _trim_blank_edges(lines)]


# What the first answer most likely paints: prose, a list and code in the commonest languages.
WARM_UP_SAMPLE = """Text with **bold**, `code` and a [link](https://example.com).

- an item

```python
def f(x: int) -> str:
    return f"{x}"
```

```bash
ls -l | grep "x"
```
"""


def warm_up() -> None:
    """Paint a sample once, off the event loop: the first code block in a language loads and
    compiles its Pygments lexer (30-50 ms), which would otherwise stall the first answer."""
    painter = MarkdownPainter(lambda *_layers: RichStyle())
    for block in WARM_UP_SAMPLE.split("\n\n"):
        painter.paint(block, 80)


def _trim_blank_edges(lines: list[list[Segment]]) -> list[list[Segment]]:
    """Blocks are painted alone and spaced by the caller; Rich adds blank lines around some."""

    def blank(line: Iterable[Segment]) -> bool:
        return all(not segment.text.strip() and not _has_background(segment) for segment in line)

    start, end = 0, len(lines)
    while start < end and blank(lines[start]):
        start += 1
    while end > start and blank(lines[end - 1]):
        end -= 1
    return lines[start:end]


def _has_background(segment: Segment) -> bool:
    return segment.style is not None and segment.style.bgcolor is not None


@lru_cache(maxsize=4)
def painter_for(theme_name: str, base: Style) -> MarkdownPainter:
    """One painter per theme and base colours, shared by every answer on screen. Call it on the
    app's thread: the theme's variables come from the running app."""
    del theme_name  # the cache key: Style.parse reads the current theme's variables

    def resolve(*layers: str) -> RichStyle:
        style = base
        for layer in layers:
            style += Style.parse(layer)
        return style.rich_style

    return MarkdownPainter(resolve)
