import io

from rich.console import Console

from termllm.cli.answer_render import (
    MarkdownWriter,
    _last_block_boundary,
    _line_cut,
    _open_fence,
)

ANSWER = (
    "# Guide\n\nIntro paragraph.\n\n"
    + "".join(f"* **Item {n}**\n    * detail {n}\n" for n in range(40))
    + "\n```python\n"
    + "".join(f"print({n})\n" for n in range(40))
    + "```\n\nThe end.\n"
)


def render_stream(text: str, height: int = 12) -> str:
    out = io.StringIO()
    console = Console(file=out, width=60, height=height, color_system=None)
    writer = MarkdownWriter(console, refresh_per_second=1e9)
    for start in range(0, len(text), 3):
        writer.write(text[start : start + 3])
    writer.finish()
    return "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())


def test_streamed_markdown_shows_everything_once_however_tall() -> None:
    shown = render_stream(ANSWER)
    for n in range(40):
        assert shown.count(f"Item {n}\n") == 1, n
        assert shown.count(f"detail {n}\n") == 1, n
        assert shown.count(f"print({n})") == 1, n
    assert "**" not in shown and "```" not in shown
    assert shown.count("The end.") == 1


def test_block_boundaries_ignore_blank_lines_inside_code() -> None:
    text = "para\n\n```\ncode\n\nmore\n"
    assert _last_block_boundary(text, 0) == len("para\n\n")
    assert _open_fence(text, len(text)) == "```"
    assert _open_fence(text + "```\n", len(text) + 4) == ""


def test_tall_blocks_are_cut_before_an_unindented_line() -> None:
    assert _line_cut("* a\n    * b\n* c\n    * d") == len("* a\n    * b\n")
    assert _line_cut("    x\n    y") == len("    x\n")
