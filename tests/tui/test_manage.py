"""Managing conversations in the app: filter, rename, delete, export, prompt history."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Button, Input, Static
from tui_support import SIZE, scripted_app, scripted_services, send, settle

from termllm.app import Services, build_services
from termllm.config import load_config
from termllm.domain import GenParams
from termllm.tui.app import ChatApp
from termllm.tui.commands import key_actions
from termllm.tui.keymap import DEFAULT_KEYS
from termllm.tui.screens.confirm import ConfirmScreen
from termllm.tui.screens.text_prompt import TextPromptScreen
from termllm.tui.widgets.messages import AnswerView
from termllm.tui.widgets.prompt import PromptInput
from termllm.tui.widgets.sidebar import SIDEBAR_LIMIT, ConversationList, FilterBox

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def remember(services: Services, *exchanges: tuple[str, str]) -> list[str]:
    """Save conversations of one question and answer each, oldest first; their ids."""
    ids = []
    for question, answer in exchanges:
        saved = services.history.save_question(None, "m", None, GenParams(), question)
        services.history.store.add_message(
            saved.conversation_id, saved.question_id, "assistant", answer, finish_reason="stop"
        )
        ids.append(saved.conversation_id)
    return ids


async def type_filter(pilot: Pilot[None], text: str) -> None:
    await pilot.press("ctrl+f", *text)
    # The search starts once typing pauses.
    await pilot.pause(0.3)
    await settle(pilot)


def listed(app: ChatApp) -> list[str | None]:
    return [option.id for option in app.query_one(ConversationList).options]


def titles(services: Services) -> list[str]:
    return [c.title for c in services.history.recent(None)]


async def test_the_filter_narrows_the_list_by_title_and_message_words() -> None:
    services, _ = scripted_services(["unused"])
    pasta, bikes, soup = remember(
        services,
        ("How long to boil pasta?", "About nine minutes for spaghetti."),
        ("Fix a bike chain", "Use a chain tool."),
        ("Tomato soup recipe", "Simmer tomatoes; serve with pasta on the side."),
    )
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert listed(app) == [soup, bikes, pasta]
        await type_filter(pilot, "spag")  # a word prefix, from an answer
        assert listed(app) == [pasta]
        assert app.query_one(FilterBox).has_focus
        await pilot.press("escape", *"pasta")
        await pilot.pause(0.3)
        await settle(pilot)
        assert listed(app) == [soup, pasta]  # newest first, as without a filter
        await pilot.press("down")
        conversations = app.query_one(ConversationList)
        assert conversations.has_focus and conversations.highlighted == 0
        await pilot.press("down", "enter")
        await settle(pilot)
        assert app.conversation_id == pasta
        await type_filter(pilot, "xyzzy")
        assert listed(app) == []
        no_matches = app.query_one("#no-matches", Static)
        assert no_matches.display and "xyzzy" in str(no_matches.render())
        await pilot.press("escape")  # clears the filter
        await settle(pilot)
        assert app.query_one(FilterBox).value == "" and not no_matches.display
        assert listed(app) == [soup, bikes, pasta]
        await pilot.press("escape")  # leaves it
        assert app.query_one(PromptInput).has_focus


async def test_the_list_holds_the_most_recent_and_the_filter_finds_older_ones() -> None:
    services, _ = scripted_services(["unused"])
    [oldest] = remember(services, ("Origami cranes", "Fold a square base first."))
    recent = remember(services, *((f"Question {n}", "An answer.") for n in range(SIDEBAR_LIMIT)))
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        options = app.query_one(ConversationList).options
        assert [option.id for option in options[:-1]] == recent[::-1]
        # The last entry says that there is more, and cannot be chosen.
        assert options[-1].disabled and options[-1].id is None
        assert "older ones: Ctrl+F to search" in str(options[-1].prompt)
        await type_filter(pilot, "origami")
        assert listed(app) == [oldest]


async def test_a_new_answer_keeps_the_filter_applied() -> None:
    services, _ = scripted_services(["A reply about gardening."])
    [old] = remember(services, ("Tomatoes in pots?", "Yes, in big ones."))
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await type_filter(pilot, "tomato")
        assert listed(app) == [old]
        await pilot.press("ctrl+t")
        await send(pilot, "Unrelated question")
        await settle(pilot)
        assert listed(app) == [old]
        assert len(services.history.recent(None)) == 2


async def test_rename_saves_the_new_title_and_esc_or_empty_saves_nothing() -> None:
    app, _ = scripted_app(["Fine."])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        assert any("nothing to rename" in n.message for n in app._notifications)
        await send(pilot, "First words")
        await pilot.press("f2")
        assert isinstance(app.screen, TextPromptScreen)
        field = app.screen.query_one(Input)
        assert field.value == "First words"
        await pilot.press("escape")
        assert titles(app.services) == ["First words"]
        await pilot.press("f2")
        app.screen.query_one(Input).value = "   "
        await pilot.press("enter")
        assert isinstance(app.screen, TextPromptScreen)
        assert any("cannot be empty" in n.message for n in app._notifications)
        app.screen.query_one(Input).value = "Better title"
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, TextPromptScreen)
        assert titles(app.services) == ["Better title"]
        sidebar = app.query_one(ConversationList)
        assert str(sidebar.get_option_at_index(0).prompt) == "Better title"


async def test_rename_acts_on_the_conversation_highlighted_in_the_list() -> None:
    services, _ = scripted_services(["unused"])
    first, second = remember(services, ("One", "a"), ("Two", "b"))
    app = ChatApp(services, conversation_id=second)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+l", "down", "f2")
        assert app.screen.query_one(Input).value == "One"
        app.screen.query_one(Input).value = "Uno"
        await pilot.press("enter")
        await settle(pilot)
        assert services.history.find(first).title == "Uno"
        assert services.history.find(second).title == "Two"
        assert app.conversation_id == second


async def test_delete_asks_first_and_cancel_is_the_default() -> None:
    services, _ = scripted_services(["unused"])
    first, second = remember(services, ("Keep me", "ok"), ("Delete me", "ok"))
    app = ChatApp(services, conversation_id=second)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f8")
        assert isinstance(app.screen, ConfirmScreen)
        assert "Delete me" in str(app.screen.query_one("#question", Static).render())
        assert app.screen.focused is app.screen.query_one("#cancel", Button)
        await pilot.press("enter")
        await settle(pilot)
        assert titles(services) == ["Delete me", "Keep me"]
        await pilot.press("f8", "escape")
        await settle(pilot)
        assert titles(services) == ["Delete me", "Keep me"]
        await pilot.press("f8", "right", "enter")
        await settle(pilot)
        assert titles(services) == ["Keep me"]
        assert app.conversation_id is None
        assert not app.query_one("#messages").children
        assert listed(app) == [first]


async def test_deleting_a_streaming_conversation_cancels_its_answer_first() -> None:
    app, _ = scripted_app([f"w{i} " for i in range(500)], delay_s=0.01)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.query_one(PromptInput).insert("Count")
        await pilot.press("enter")
        while "w2" not in app.query_one(AnswerView).source:
            await pilot.pause(0.02)
        await pilot.press("f8")
        app.screen.query_one("#confirm", Button).press()
        await settle(pilot)
        assert not app.generating
        assert app.services.history.recent(None) == []
        assert app.conversation_id is None and listed(app) == []
        assert not [n for n in app._notifications if n.severity == "error"]


async def test_export_writes_markdown_and_never_overwrites_silently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app, _ = scripted_app(["Use **bold**."])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "How to: stress a word?")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, TextPromptScreen)
        field = app.screen.query_one(Input)
        assert field.value == str(tmp_path / "how-to-stress-a-word.md")
        await pilot.press("enter")
        await settle(pilot)
        written = (tmp_path / "how-to-stress-a-word.md").read_text(encoding="utf-8")
        assert app.conversation_id is not None
        assert written == app.services.history.export_markdown([app.conversation_id])
        assert "## User\n\nHow to: stress a word?" in written and "Use **bold**." in written
        assert any(str(tmp_path / "how-to") in n.message for n in app._notifications)

        await pilot.press("ctrl+s")  # the default moves on to a free name
        assert app.screen.query_one(Input).value == str(tmp_path / "how-to-stress-a-word-2.md")
        app.screen.query_one(Input).value = "how-to-stress-a-word.md"
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen)  # asks before replacing
        (tmp_path / "how-to-stress-a-word.md").write_text("mine", encoding="utf-8")
        await pilot.press("enter")  # Cancel has the focus
        await settle(pilot)
        assert (tmp_path / "how-to-stress-a-word.md").read_text(encoding="utf-8") == "mine"
        await pilot.press("ctrl+s")
        app.screen.query_one(Input).value = "how-to-stress-a-word.md"
        await pilot.press("enter", "right", "enter")
        await settle(pilot)
        assert (tmp_path / "how-to-stress-a-word.md").read_text(encoding="utf-8") == written


async def test_an_export_that_cannot_be_written_is_a_notification(tmp_path: Path) -> None:
    locked = tmp_path / "a-file"
    locked.write_text("not a folder", encoding="utf-8")
    app, _ = scripted_app(["ok"])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "Hello")
        await pilot.press("ctrl+s")
        app.screen.query_one(Input).value = str(locked / "out.md")
        await pilot.press("enter")
        await settle(pilot)
        assert app.is_running
        assert any(
            "cannot write" in n.message and n.severity == "error" for n in app._notifications
        )
        assert locked.read_text(encoding="utf-8") == "not a folder"


async def test_up_and_down_walk_through_earlier_prompts_across_restarts() -> None:
    services, _ = scripted_services(["ok"])
    remember(services, ("from an earlier session", "a"), ("line one\nline two", "b"))
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        prompt = app.query_one(PromptInput)
        await send(pilot, "sent now")
        await pilot.press(*"draft")
        await pilot.press("up")
        assert prompt.text == "sent now"
        await pilot.press("up")
        assert prompt.text == "line one\nline two"
        await pilot.press("up")  # the cursor sits on the last line: it moves up first
        assert prompt.text == "line one\nline two" and prompt.cursor_location[0] == 0
        await pilot.press("up")
        assert prompt.text == "from an earlier session"
        await pilot.press("up")
        assert prompt.text == "from an earlier session"
        await pilot.press(*" edited")
        await pilot.press("down", "down")
        assert prompt.text == "sent now"
        await pilot.press("down")
        assert prompt.text == "draft"
        await pilot.press("up", "up", "up", "up")
        assert prompt.text == "from an earlier session"  # the edit changed no entry
        assert prompt.prompts.entries == [
            "sent now",
            "line one\nline two",
            "from an earlier session",
        ]


async def test_the_starter_model_chats_in_two_conversations_that_are_then_tidied(
    starter_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERMLLM_GENERATION_TEMPERATURE", "0")
    monkeypatch.setenv("TERMLLM_GENERATION_MAX_TOKENS", "24")
    services = build_services(load_config())
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "What is the capital of France?")
        first = app.conversation_id
        await pilot.press("ctrl+n")
        await send(pilot, "Name a colour.")
        second = app.conversation_id
        assert first and second and first != second
        _, records = services.history.transcript(first)
        answer = records[-1].content
        word = next(w for w in answer.split() if w.isalpha() and len(w) > 4)
        await type_filter(pilot, word.lower())
        assert first in listed(app)
        await pilot.press("enter", *["down"] * listed(app).index(first), "enter")
        await settle(pilot)
        assert app.conversation_id == first
        await pilot.press("f2")
        app.screen.query_one(Input).value = "France"
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("ctrl+f", "escape")  # back to the whole list
        await settle(pilot)
        await pilot.press("ctrl+l", "home", *["down"] * listed(app).index(second))
        await pilot.press("f8", "right", "enter")
        await settle(pilot)
        assert app.conversation_id == first
        assert not [n for n in app._notifications if n.severity == "error"]
    [kept] = services.history.recent(None)
    assert (kept.id, kept.title) == (first, "France")
    assert [r.content for r in services.history.transcript(first)[1]][-1] == answer
    services.history.close()


async def test_every_bound_action_is_in_the_palette_and_the_help_screen() -> None:
    app, _ = scripted_app(["ok"])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        actions = key_actions(app, keymap=app.keymap_overrides)
        bound = {entry.binding_id for entry in actions}
        # Every id of the keymap that something on screen binds, and at least these.
        assert bound >= {
            *("new_conversation", "rename_conversation", "delete_conversation"),
            *("export_conversation", "filter_conversations", "command_palette", "help"),
            *("send", "newline", "cancel", "focus_sidebar", "focus_prompt", "quit"),
        }
        assert bound <= set(DEFAULT_KEYS)
        for entry in actions:
            name = entry.action.partition("(")[0]  # an action may take parameters
            assert hasattr(entry.node, f"action_{name}"), entry
        commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
        await pilot.press("f1")
        help_text = str(app.screen.query_one("#help-box Static").render())
        for entry in actions:
            assert commands[entry.description] == entry.keys
            assert f"{entry.keys}" in help_text and entry.description in help_text
        assert len(commands) == len(set(commands))


async def test_the_palette_runs_an_action_and_shows_remapped_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERMLLM_TUI_KEYMAP", "rename_conversation=f6")
    services, _ = scripted_services(["ok"])
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "Hello")
        commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert commands["Rename conversation"] == "f6"
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"rename conv")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TextPromptScreen)
        assert app.screen.query_one(Input).value == "Hello"
