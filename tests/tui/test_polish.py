"""Small things seen in the running app: label spacing, the speed after a cancelled answer,
borders at 256 colours, emoji in titles, and which themes the picker offers."""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from rich.color import Color as RichColor
from rich.color import ColorSystem
from textual.color import Color
from textual.command import CommandPalette
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Button, OptionList
from tui_support import SIZE, scripted_app, send, settle

from termllm.domain import Chunk, Completion, FinishReason, GenParams, Message
from termllm.safe_text import one_line
from termllm.tui.themes import builtin_themes_dir
from termllm.tui.widgets.answer import AnswerView
from termllm.tui.widgets.messages import UserMessage
from termllm.tui.widgets.prompt import PromptInput
from termllm.tui.widgets.sidebar import ConversationList, Sidebar
from termllm.tui.widgets.status import StatusBar

pytestmark = pytest.mark.anyio

BUILTIN_NAMES = sorted(path.stem for path in builtin_themes_dir().glob("*.toml"))
# WCAG's contrast ratio of a thin line against its background: 1.0 is the same colour.
MIN_BORDER_CONTRAST = 1.5
WAVE = "👋🏽"  # a waving hand with a skin-tone modifier
FAMILY = "👨\u200d👩\u200d👧"  # three emoji joined into one


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def drawn(widget: Widget) -> list[str]:
    """The widget's lines with its border, as the terminal gets them."""
    strips = widget.render_lines(Region(0, 0, *widget.outer_size))
    return [strip.text for strip in strips]


def terminal_width(line: str) -> int:
    """Cells a terminal that knows no emoji sequences draws: each code point on its own."""
    width = 0
    for character in line:
        if unicodedata.category(character) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1
    return width


async def test_an_alternative_label_keeps_a_space_before_the_border() -> None:
    app, model = scripted_app(["First answer."])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "Hi")
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert drawn(app.query_one(AnswerView))[-1].endswith(" alternative 2/2 ─")

        await pilot.press("ctrl+g")
        await settle(pilot)
        app.query_one(PromptInput).clear()
        model.answer = ["Second answer."]
        await send(pilot, "Hi again")
        assert drawn(app.query_one(UserMessage))[-1].endswith(" alternative 2/2 ─")


async def test_a_cancelled_answer_with_no_speed_keeps_the_last_speed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, model = scripted_app(["Quick ", "answer."])
    scripted_stream = model.stream_chat

    def stream_like_llama(
        messages: Sequence[Message], params: GenParams, cancel: threading.Event
    ) -> Iterator[Chunk]:
        # llama.cpp measures no decode speed for an answer cut early; the script always does.
        for chunk in scripted_stream(messages, params, cancel):
            if isinstance(chunk, Completion) and chunk.finish_reason == FinishReason.CANCELLED:
                chunk = replace(chunk, timings=replace(chunk.timings, decode_tokens_per_s=0.0))
            yield chunk

    monkeypatch.setattr(model, "stream_chat", stream_like_llama)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "First")
        status = app.query_one(StatusBar)
        assert status.info.tokens_per_s == 100.0
        model.answer = [f"w{i} " for i in range(500)]
        model.delay_s = 0.01
        await pilot.press("ctrl+n")
        app.query_one(PromptInput).insert("Count")
        await pilot.press("enter")
        while "w1" not in app.query_one(AnswerView).source:
            await pilot.pause(0.02)
        await pilot.press("f8")
        app.screen.query_one("#confirm", Button).press()
        await settle(pilot)
        assert not app.generating
        assert [c.title for c in app.services.history.recent(None)] == ["First"]
        assert status.info.tokens_per_s == 100.0
        assert str(status.content).endswith(" · 100.0 tok/s")


def relative_luminance(color: Color) -> float:
    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = color.rgb
    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def in_256_colours(color: Color) -> tuple[int | None, Color]:
    """The xterm colour a 256-colour terminal gets (as Rich reduces it): number and value."""
    reduced = RichColor.parse(color.hex).downgrade(ColorSystem.EIGHT_BIT)
    value = reduced.get_truecolor()
    return reduced.number, Color(value.red, value.green, value.blue)


@pytest.mark.parametrize("theme", BUILTIN_NAMES)
async def test_unfocused_borders_stay_visible_at_256_colours(theme: str) -> None:
    app, _ = scripted_app([])
    async with app.run_test(size=SIZE) as pilot:
        app.theme = theme
        await settle(pilot)
        sidebar = app.query_one(Sidebar)
        assert not sidebar.has_focus_within
        _, background = sidebar.background_colors
        border = background + sidebar.styles.border_left[1]
        border_number, border_256 = in_256_colours(border)
        background_number, background_256 = in_256_colours(background)
        lighter, darker = sorted(
            (relative_luminance(border_256), relative_luminance(background_256)), reverse=True
        )
        assert border_number != background_number
        assert (lighter + 0.05) / (darker + 0.05) >= MIN_BORDER_CONTRAST


def test_titles_lose_what_terminals_draw_wider_than_rich_counts() -> None:
    assert one_line(f"Hi {WAVE} and {FAMILY}") == "Hi 👋 and 👨👩👧"
    assert one_line("I ❤\ufe0f tea") == "I ❤ tea"
    assert one_line("red\x1b[31m\r\nbell\x07 \u202eevil") == "red [31m bell evil"


async def test_an_emoji_sequence_in_a_title_keeps_the_sidebar_border_in_place() -> None:
    app, _ = scripted_app([])
    history = app.services.history
    for title in (f"Hello {WAVE} there, a title long enough to wrap", f"{FAMILY} [b]plans[/b]"):
        saved = history.save_question(None, "m", None, GenParams(), "question")
        history.rename(saved.conversation_id, title)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        listing = app.query_one(ConversationList)
        assert [terminal_width(line) for line in drawn(listing)] == [
            listing.outer_size.width
        ] * listing.outer_size.height
        assert [str(option.prompt) for option in listing.options] == [
            "👨👩👧 [b]plans[/b]",
            "Hello 👋 there, a title long enough to wrap",
        ]


async def test_the_theme_picker_lists_termllm_themes_and_the_users(tmp_path: Path) -> None:
    app, _ = scripted_app([])
    user_themes = app.services.config.paths.config_file.parent / "themes"
    user_themes.mkdir(parents=True)
    (user_themes / "mine.toml").write_text('name = "mine"\nprimary = "#ff0000"\n')
    (user_themes / "nord.toml").write_text('name = "nord"\nprimary = "#88c0d0"\n')
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert sorted(app.available_themes) == sorted([*BUILTIN_NAMES, "mine", "nord"])
        await pilot.press("f9")
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)
        await pilot.pause(0.3)
        commands = app.screen.query_one("CommandList", OptionList)
        listed = [str(option.prompt) for option in commands.options]
        assert sorted(listed) == sorted([*BUILTIN_NAMES, "mine", "nord"])
