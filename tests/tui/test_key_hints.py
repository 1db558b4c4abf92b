"""Every hint on screen names the key the user's keymap gives its action, not the default."""

from __future__ import annotations

import pytest
from textual.widgets import Static
from tui_support import SIZE, notices, scripted_app, send, settle

from termllm.tui.keymap import key_label
from termllm.tui.screens.help import HelpScreen
from termllm.tui.widgets.prompt import PromptInput
from termllm.tui.widgets.sidebar import FilterBox
from termllm.tui.widgets.status import StatusBar

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("escape", "Esc"),
        ("f12", "F12"),
        ("ctrl+f", "Ctrl+F"),
        ("shift+enter", "Shift+Enter"),
        ("alt+up", "Alt+Up"),
        ("pagedown", "PgDn"),
        ("question_mark", "?"),
        ("ctrl+comma", "Ctrl+,"),
        ("space", "Space"),
    ],
)
def test_key_labels(key: str, label: str) -> None:
    assert key_label(key) == label


async def test_remapped_keys_are_the_ones_the_hints_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TERMLLM_TUI_KEYMAP", "help=f12,cancel=f10,filter_conversations=f11,newline=ctrl+j"
    )
    app, _ = scripted_app([f"w{i} " for i in range(400)], delay_s=0.01)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        prompt = app.query_one(PromptInput)
        assert prompt.placeholder == "Ask anything · Enter sends · Ctrl+J new line · F12 keys"
        assert app.query_one(FilterBox).placeholder == "Filter (F11)"

        prompt.insert("Go")
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert "F10 cancels" in str(app.query_one(StatusBar).render())
        prompt.insert("And then?")
        await pilot.press("enter", "ctrl+r")
        await pilot.pause()
        refusals = notices(app)
        assert any("or F10 cancels it; your message stays" in text for text in refusals)
        assert "an answer is still streaming: F10 cancels it" in refusals
        prompt.clear()
        await pilot.press("f10")
        await settle(pilot)

        await pilot.press("ctrl+g")
        assert prompt.border_title == "Editing your last question · F10 keeps the original"
        await pilot.press("f10")

        await pilot.press("f12")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        help_text = str(app.screen.query_one(Static).render())
        assert "f12" in help_text and "f1 " not in help_text
        assert "f10" in help_text


async def test_the_default_hints(monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = scripted_app(["Hi."])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Hello")
        assert (
            app.query_one(PromptInput).placeholder
            == "Ask anything · Enter sends · Shift+Enter new line · F1 keys"
        )
        assert app.query_one(FilterBox).placeholder == "Filter (Ctrl+F)"
