"""The pieces of the streaming pipeline: frame pacing and the final render of a streamed answer."""

from __future__ import annotations

import time

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownBlock

from termllm.tui.streaming import FASTEST_FRAME_S, SLOWEST_FRAME_S, FramePacer
from termllm.tui.widgets.final_render import render_final

pytestmark = pytest.mark.anyio

ANSWER = """# Totals

Read the file:

```python
total = sum(rows)
```

- one
- two

Done.
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def burn(cpu_s: float) -> None:
    started = time.thread_time()
    while time.thread_time() - started < cpu_s:
        pass


def test_frames_slow_down_as_drawing_costs_more_cpu() -> None:
    pacer = FramePacer(budget=0.1)
    assert pacer.next_delay() == FASTEST_FRAME_S
    burn(0.03)
    assert 0.3 <= pacer.next_delay() < SLOWEST_FRAME_S
    burn(0.2)
    assert pacer.next_delay() == SLOWEST_FRAME_S


class Host(App[None]):
    def compose(self) -> ComposeResult:
        yield Markdown()


async def stream(document: Markdown, text: str, piece: int) -> None:
    for start in range(0, len(text), piece):
        await document.append(text[start : start + piece])


def blocks(document: Markdown) -> list[MarkdownBlock]:
    return [child for child in document.children if isinstance(child, MarkdownBlock)]


async def test_the_final_render_keeps_the_streamed_blocks_it_reproduces() -> None:
    async with Host().run_test() as pilot:
        document = pilot.app.query_one(Markdown)
        await stream(document, ANSWER, 7)
        streamed = blocks(document)
        await render_final(document, ANSWER)
        await pilot.pause()
        assert blocks(document) == streamed
        assert document.source == ANSWER
        full = Markdown(ANSWER)
        await pilot.app.mount(full)
        await pilot.pause()
        assert [(b.name, b.source_range) for b in blocks(document)] == [
            (b.name, b.source_range) for b in blocks(full)
        ]


async def test_the_final_render_replaces_what_the_stream_drew_differently() -> None:
    async with Host().run_test() as pilot:
        document = pilot.app.query_one(Markdown)
        await stream(document, "Intro\n\n- one\n", 50)
        # The rest turns out to be the same list: the streamed ending is replaced.
        await render_final(document, "Intro\n\n- one\n- two\n")
        await pilot.pause()
        assert [b.name for b in blocks(document)] == ["paragraph_open", "bullet_list_open"]
        assert blocks(document)[1].source_range == (2, 4)


async def test_link_definitions_get_a_full_update() -> None:
    text = "See [the docs][d].\n\nMore.\n\n[d]: https://example.com\n"
    async with Host().run_test() as pilot:
        document = pilot.app.query_one(Markdown)
        await stream(document, text, 5)
        streamed = blocks(document)
        await render_final(document, text)
        await pilot.pause()
        assert not set(blocks(document)) & set(streamed)
        assert "example.com" in str(blocks(document)[0]._content.spans)
