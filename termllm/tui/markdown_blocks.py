"""Markdown text as its top-level blocks (paragraphs, headings, lists, code blocks, tables...),
each of which can be painted on its own.

While an answer streams, a block followed by another one is sealed: its source can no longer
change, so it is painted once. Only the last, open block is parsed again as text arrives. When
the answer ends, the whole text is split once more, because a full parse can split differently.
"""

from __future__ import annotations

from functools import cache

from markdown_it import MarkdownIt


@cache
def markdown_parser() -> MarkdownIt:
    """The parser Rich's Markdown uses (markdown_paint.py shares it)."""
    return MarkdownIt().enable("strikethrough").enable("table")


def _block_lines(text: str) -> tuple[list[tuple[int, int]], bool]:
    """The line range of each top-level block, and whether the text defines link references."""
    env: dict[str, object] = {}
    tokens = markdown_parser().parse(text, env)
    ranges = [
        (token.map[0], token.map[1])
        for token in tokens
        if token.level == 0 and token.nesting >= 0 and token.map is not None
    ]
    return ranges, bool(env.get("references"))


def _lines(text: str) -> list[str]:
    """Lines as the parser counts them (str.splitlines also breaks at other separators)."""
    *ended, last = text.split("\n")
    return [line + "\n" for line in ended] + [last]


def split_blocks(text: str) -> list[str]:
    """The source of each top-level block of `text`, in order, without the blank lines between.

    Link reference definitions apply to blocks anywhere in the text, so a text that has them is
    one block.
    """
    ranges, has_references = _block_lines(text)
    if has_references:
        return [text] if text.strip() else []
    lines = _lines(text)
    return ["".join(lines[start:end]) for start, end in ranges]


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of each code block in `text`, nested ones included, in order."""
    return [
        (token.info.partition(" ")[0], token.content.rstrip("\n"))
        for token in markdown_parser().parse(text)
        if token.type in ("fence", "code_block")
    ]


class StreamedBlocks:
    """The blocks of a text that grows at its end (starting from `sealed`, blocks already
    complete)."""

    def __init__(self, sealed: list[str] | None = None) -> None:
        self.sealed: list[str] = sealed or []
        self._open = ""

    @property
    def open(self) -> str:
        """The last block, which the next text may still change (it may also become several)."""
        return self._open

    def append(self, text: str) -> None:
        """Add text at the end."""
        self._open += text
        ranges, has_references = _block_lines(self._open)
        if len(ranges) < 2 or has_references:
            return
        lines = _lines(self._open)
        self.sealed.extend("".join(lines[start:end]) for start, end in ranges[:-1])
        self._open = "".join(lines[ranges[-1][0] :])
