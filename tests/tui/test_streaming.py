"""The pieces of the streaming pipeline: frame pacing, splitting Markdown into blocks as it
arrives, and the answer widget that paints each block once."""

from __future__ import annotations

import gc
import time

import pytest
from textual.app import App, ComposeResult
from textual.geometry import Offset
from textual.pilot import Pilot
from textual.selection import Selection

from termllm.domain import Completion, FinishReason, Timings, Usage
from termllm.tui.markdown_blocks import StreamedBlocks, code_blocks, split_blocks
from termllm.tui.streaming import (
    FASTEST_FRAME_S,
    SLOWEST_FRAME_S,
    FramePacer,
    LiveAnswer,
)
from termllm.tui.themes import CODE_VARIABLE_DEFAULTS
from termllm.tui.widgets.answer import GROWTH_STEP, AnswerView
from termllm.tui.widgets.messages import ConversationView

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
    # One costly moment does not slow the frames down...
    burn(0.05)
    assert pacer.next_delay() == FASTEST_FRAME_S
    # ...every frame costing more does.
    for _ in range(3):
        burn(0.03)
        delay = pacer.next_delay()
    assert 0.3 <= delay < SLOWEST_FRAME_S
    for _ in range(3):
        burn(0.2)
        delay = pacer.next_delay()
    assert delay == SLOWEST_FRAME_S


class Host(App[None]):
    def get_theme_variable_defaults(self) -> dict[str, str]:
        return CODE_VARIABLE_DEFAULTS  # as ChatApp does

    def compose(self) -> ComposeResult:
        yield AnswerView()


class Conversation(Host):
    def compose(self) -> ComposeResult:
        yield ConversationView()


def lines(answer: AnswerView) -> list[str]:
    return [answer.render_line(y).text.rstrip() for y in range(answer.size.height)]


def stream(answer: AnswerView, text: str, piece: int) -> None:
    for start in range(0, len(text), piece):
        answer.add_fragment(text[start : start + piece])


@pytest.mark.parametrize("piece", [1, 7, 50, len(ANSWER)])
def test_streamed_blocks_are_the_blocks_of_the_full_parse(piece: int) -> None:
    streamed = StreamedBlocks()
    for start in range(0, len(ANSWER), piece):
        streamed.append(ANSWER[start : start + piece])
    full = split_blocks(ANSWER)
    assert streamed.sealed == full[:-1]
    assert streamed.open.rstrip() == full[-1].rstrip()
    assert [block.split("\n")[0] for block in full] == [
        "# Totals",
        "Read the file:",
        "```python",
        "- one",
        "Done.",
    ]


def test_link_definitions_keep_the_text_in_one_block() -> None:
    text = "See [the docs][d].\n\nMore.\n\n[d]: https://example.com\n"
    assert split_blocks(text) == [text]
    streamed = StreamedBlocks()
    streamed.append(text)
    assert streamed.sealed == []


def test_code_blocks_are_found_at_any_depth() -> None:
    text = ANSWER + "\n- item\n\n  ```sh\n  ls\n  ```\n"
    assert code_blocks(text) == [("python", "total = sum(rows)"), ("sh", "ls")]


async def test_a_streamed_answer_ends_as_the_same_answer_shown_whole() -> None:
    async with Host().run_test(size=(60, 40)) as pilot:
        answer = pilot.app.query_one(AnswerView)
        stream(answer, ANSWER, 7)
        await pilot.pause()
        painted = list(answer._lines._painted)
        assert painted and all(painted)
        await answer.finish(ANSWER, "stop", None)
        await pilot.pause()
        # The sealed blocks' painted lines are kept, not painted again.
        assert all(a is b for a, b in zip(painted, answer._lines._painted, strict=False))
        streamed = lines(answer)
        whole = AnswerView(ANSWER, "stop")
        await pilot.app.mount(whole)
        await pilot.pause()
        assert streamed == lines(whole)
        assert streamed[0] == "Totals"
        assert "  total = sum(rows)" in streamed  # padded like a Textual code block
        assert answer.source == ANSWER


async def test_the_final_render_replaces_what_the_stream_split_differently() -> None:
    async with Host().run_test(size=(60, 20)) as pilot:
        answer = pilot.app.query_one(AnswerView)
        stream(answer, "Intro\n\n- one\n", 50)
        await answer.finish("Intro\n\n- one\n- two\n", "stop", None)
        await pilot.pause()
        assert [line for line in lines(answer) if line] == ["Intro", " • one", " • two"]


async def test_a_new_theme_paints_the_answer_again() -> None:
    async with Host().run_test(size=(60, 20)) as pilot:
        answer = pilot.app.query_one(AnswerView)
        stream(answer, ANSWER, len(ANSWER))
        await pilot.pause()
        before = answer.render_line(0)
        pilot.app.theme = "textual-light"
        await pilot.pause()
        after = answer.render_line(0)
        assert before.text == after.text
        assert before != after


async def test_selected_text_comes_from_the_painted_lines() -> None:
    async with Host().run_test(size=(60, 20)) as pilot:
        answer = pilot.app.query_one(AnswerView)
        stream(answer, "First line.\n\nSecond one.\n", 100)
        await pilot.pause()
        selected = answer.get_selection(Selection(Offset(0, 0), Offset(6, 2)))
        assert selected == ("First line.\n\nSecond", "\n")


LONG = "".join(
    f"## Part {n}\n\nSome words about part {n}.\n\n```python\nx = {n}\n```\n\n" for n in range(60)
)


def painted(answer: AnswerView) -> int:
    return sum(lines is not None for lines in answer._lines._painted)


async def test_a_long_answer_paints_what_is_seen_first_and_the_rest_when_idle() -> None:
    async with Conversation().run_test(size=(60, 20)) as pilot:
        view = pilot.app.query_one(ConversationView)
        answer = AnswerView()
        await view.mount(answer)
        view.anchor()
        stream(answer, LONG, len(LONG))
        await pilot.pause()
        # 179 sealed blocks and the open one; the screen shows the last few, so only those
        # were painted.
        assert len(answer._lines._painted) == 179
        assert 0 < painted(answer) < 20
        assert "  x = 59" in lines(answer)[-GROWTH_STEP - 3 :]
        await answer.finish(LONG, "stop", None)
        await painted_when_idle(pilot, answer)
        # An answer opened from the history gets there the same way.
        whole = AnswerView(LONG, "stop")
        await view.mount(whole)
        await pilot.pause()
        await painted_when_idle(pilot, whole)
        assert lines(answer) == lines(whole)


async def painted_when_idle(pilot: Pilot[None], answer: AnswerView) -> None:
    for _ in range(200):
        if not answer.waits_for_painting:
            break
        await pilot.pause(0.05)
    assert painted(answer) == 180
    assert answer.size.height == answer._lines.line_count


async def test_garbage_collection_resumes_when_an_answer_ends_or_fails() -> None:
    async with Host().run_test() as pilot:
        view = pilot.app.query_one(AnswerView)
        for end in ("finish", "fail"):
            live = LiveAnswer(pilot.app, view)
            assert not gc.isenabled()
            if end == "finish":
                await live.finish(
                    Completion("done", FinishReason.STOP, Usage(1, 1), Timings(0, 0, 0, 0))
                )
            else:
                await live.fail("broken")
            assert gc.isenabled()


TRICKY = {
    "setext heading": "Title\n-----\n\nText under it.\n",
    "list that goes on after a blank line": "1. one\n\n2. two\n   still two\n\nAfter.\n",
    "table": "| a | b |\n|---|---|\n| 1 | 2 |\n\nAfter the table.\n",
    "quote with lazy line": "> quoted\nlazy continuation\n\nOut.\n",
    "code in a list": "- item\n\n  ```python\n  x = 1\n  ```\n- next\n",
    "reference link": "See [docs][d] and more.\n\nSecond.\n\n[d]: https://example.com\n",
    "html": "<div>\nraw\n</div>\n\nText.\n",
}


@pytest.mark.parametrize("name", sorted(TRICKY))
async def test_any_markdown_streamed_in_any_pieces_ends_as_shown_whole(name: str) -> None:
    text = TRICKY[name]
    async with Host().run_test(size=(60, 30)) as pilot:
        streamed = pilot.app.query_one(AnswerView)
        whole = AnswerView(text, "stop")
        await pilot.app.mount(whole)
        for piece in (1, 3, 10):
            await streamed.remove()
            streamed = AnswerView()
            await pilot.app.mount(streamed, before=whole)
            await pilot.pause()
            stream(streamed, text, piece)
            await pilot.pause()
            await streamed.finish(text, "stop", None)
            await pilot.pause()
            assert any(lines(whole))
            assert lines(streamed) == lines(whole), (name, piece)
