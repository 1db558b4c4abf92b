"""Moving about the main screen by keyboard: the conversation list's focus, the page keys, and
the sidebar of a narrow terminal."""

from __future__ import annotations

import pytest
from tui_support import SIZE, scripted_services, send, settle, shown

from termllm.app import Services
from termllm.tui.app import ChatApp
from termllm.tui.screens.help import HelpScreen
from termllm.tui.widgets.messages import ConversationView
from termllm.tui.widgets.prompt import PromptInput
from termllm.tui.widgets.sidebar import ConversationList, Sidebar

pytestmark = pytest.mark.anyio

LONG_ANSWER = [f"line {n}\n\n" for n in range(60)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def two_conversations(services: Services) -> list[str]:
    """Ids of two saved conversations, newest first."""
    async with ChatApp(services).run_test(size=SIZE) as pilot:
        await send(pilot, "First question")
        first = pilot.app.conversation_id
        await pilot.press("ctrl+n")
        await send(pilot, "Second question")
        second = pilot.app.conversation_id
    assert first is not None and second is not None
    return [second, first]


async def test_ctrl_l_on_a_fresh_start_highlights_a_row_that_enter_opens() -> None:
    services, _ = scripted_services(["An answer."])
    newest, _older = await two_conversations(services)
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.conversation_id is None
        await pilot.press("ctrl+l")
        conversations = app.query_one(ConversationList)
        assert conversations.has_focus
        assert conversations.highlighted == 0
        await pilot.press("enter")
        await settle(pilot)
        assert app.conversation_id == newest
        assert shown(app)[0] == ("user", "Second question")


async def test_ctrl_l_highlights_the_open_conversation() -> None:
    services, _ = scripted_services(["An answer."])
    _newest, older = await two_conversations(services)
    app = ChatApp(services, conversation_id=older)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        conversations = app.query_one(ConversationList)
        conversations.highlighted = 0
        await pilot.press("ctrl+l")
        assert conversations.highlighted == 1


async def test_opening_a_conversation_gives_the_prompt_the_keys() -> None:
    services, _ = scripted_services(["An answer."])
    _newest, older = await two_conversations(services)
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+l", "down", "enter")
        await settle(pilot)
        assert app.conversation_id == older
        prompt = app.query_one(PromptInput)
        assert prompt.has_focus
        await pilot.press("W", "h", "o", "?")
        assert not isinstance(app.screen, HelpScreen)
        assert prompt.text == "Who?"


async def test_page_keys_scroll_the_conversation_from_the_prompt() -> None:
    services, _ = scripted_services(LONG_ANSWER)
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "Count")
        view = app.query_one(ConversationView)
        assert app.query_one(PromptInput).has_focus
        assert view.max_scroll_y > 0
        bottom = view.scroll_y
        await pilot.press("pageup")
        await settle(pilot)
        assert view.scroll_y < bottom
        up = view.scroll_y
        await pilot.press("pagedown")
        await settle(pilot)
        assert view.scroll_y > up
        assert app.query_one(PromptInput).has_focus


async def test_page_keys_stay_with_the_conversation_list_and_dialogs() -> None:
    services, _ = scripted_services(LONG_ANSWER)
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "Count")
        view = app.query_one(ConversationView)
        bottom = view.scroll_y
        await pilot.press("ctrl+l", "pageup")
        await settle(pilot)
        assert view.scroll_y == bottom
        await pilot.press("f1", "pageup")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        assert view.scroll_y == bottom


async def test_the_help_screen_lists_the_history_newline_and_page_keys() -> None:
    services, _ = scripted_services(["ok"])
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        text = str(app.screen.query_one("#help-box Static").render())
        assert "↑ / ↓" in text and "Earlier / later prompts" in text
        assert "shift+enter / ctrl+j" in text
        assert "pgup" in text and "Scroll the conversation up" in text
        assert "pgdn" in text and "Scroll the conversation down" in text


async def test_a_narrow_terminal_hides_the_sidebar_until_ctrl_l() -> None:
    services, _ = scripted_services(["An answer."])
    await two_conversations(services)
    app = ChatApp(services)
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot)
        sidebar = app.query_one(Sidebar)
        prompt = app.query_one(PromptInput)
        assert not sidebar.display
        assert prompt.size.width >= 40
        assert app.query_one(ConversationView).size.width >= 40
        await pilot.press("ctrl+l")
        await settle(pilot)
        assert sidebar.display and sidebar.size.width > 0
        assert app.query_one(ConversationList).has_focus
        await pilot.press("enter")
        await settle(pilot)
        assert prompt.has_focus
        assert not sidebar.display and prompt.size.width >= 40


async def test_a_wide_terminal_keeps_the_sidebar() -> None:
    services, _ = scripted_services(["ok"])
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.query_one(Sidebar).size.width > 0
