"""The conversation's settings (F5): checked, saved with the conversation, used for answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_engine import ScriptedEngine, ScriptedModel
from model_dialogs import fill
from textual.pilot import Pilot
from textual.widgets import Input, Static, TextArea
from tui_support import SIZE, settle, submit

from termllm.app import build_services
from termllm.config import load_config
from termllm.domain import GenParams, Message, Role
from termllm.tui.app import ChatApp
from termllm.tui.screens.settings import SettingsScreen

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def open_settings(pilot: Pilot[None]) -> SettingsScreen:
    await pilot.press("f5")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, SettingsScreen)
    return screen


def set_system_prompt(pilot: Pilot[None], text: str) -> None:
    pilot.app.screen.query_one("#setting-system_prompt", TextArea).text = text


def build() -> tuple[ChatApp, ScriptedEngine]:
    engine = ScriptedEngine(ScriptedModel(["Fine", " answer", " here"]))
    return ChatApp(build_services(load_config(), engine_factory=lambda: engine)), engine


async def test_settings_are_checked_saved_and_reach_the_engine() -> None:
    app, engine = build()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit(pilot, "Hi")
        cid = app.conversation_id or ""
        before = app.services.history.find(cid)
        screen = await open_settings(pilot)
        assert screen.query_one("#setting-temperature", Input).value == "0.7"
        fill(pilot, "#setting-temperature", "-1")
        fill(pilot, "#setting-top_p", "lots")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen, "nothing is saved while a field is wrong"
        assert str(screen.query_one("#error-temperature", Static).render()) == (
            "must be at least 0"
        )
        assert "not a number" in str(screen.query_one("#error-top_p", Static).render())
        assert any("Temperature" in n.message for n in app._notifications)
        assert app.services.history.find(cid) == before

        set_system_prompt(pilot, "Be terse.\nAnswer in English.")
        for name, value in [
            ("temperature", "0"),
            ("top_p", "0.5"),
            ("top_k", "12"),
            ("min_p", "0"),
            ("repeat_penalty", "1.3"),
            ("seed", "7"),
            ("max_tokens", "2"),
            ("n_ctx", "1024"),
        ]:
            fill(pilot, f"#setting-{name}", value)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, SettingsScreen)

        saved = app.services.history.find(cid)
        assert saved.system_prompt == "Be terse.\nAnswer in English."
        assert saved.params == {
            "temperature": 0.0,
            "top_p": 0.5,
            "top_k": 12,
            "min_p": 0.0,
            "repeat_penalty": 1.3,
            "seed": 7,
            "max_tokens": 2,
            "think": "auto",
            "think_budget": None,
            "n_ctx": 1024,
        }
        await submit(pilot, "Next")
        model = engine.model
        assert model.params_seen[-1] == GenParams(0.0, 0.5, 12, 0.0, 1.3, 7, 2)
        assert model.seen[-1][0] == Message(Role.SYSTEM, "Be terse.\nAnswer in English.")
        assert engine.requests[-1].n_ctx == 1024, "a new context size reloads the model"
        _, records = app.services.history.transcript(cid)
        assert (records[-1].content, records[-1].finish_reason) == ("Fine answer", "length")

        screen = await open_settings(pilot)
        assert screen.query_one("#setting-n_ctx", Input).value == "1024"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SettingsScreen)


async def test_settings_of_a_new_conversation_apply_to_the_one_its_first_message_creates() -> None:
    app, engine = build()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_settings(pilot)
        set_system_prompt(pilot, "You are a pirate.")
        fill(pilot, "#setting-temperature", "0.2")
        fill(pilot, "#setting-seed", "")
        app.screen.query_one("#setting-seed", Input).focus()
        await pilot.press("enter")  # Enter in a field saves too.
        await pilot.pause()
        assert not isinstance(app.screen, SettingsScreen)
        assert app.services.history.recent(None) == []
        await submit(pilot, "Ahoy")
        conversation = app.services.history.find(app.conversation_id or "")
        assert conversation.system_prompt == "You are a pirate."
        assert conversation.params["temperature"] == 0.2
        assert engine.model.params_seen[-1].temperature == 0.2
        assert engine.model.seen[-1][0] == Message(Role.SYSTEM, "You are a pirate.")

        await pilot.press("ctrl+n")
        await settle(pilot)
        screen = await open_settings(pilot)
        assert screen.query_one("#setting-temperature", Input).value == "0.7"
        assert screen.query_one("#setting-system_prompt", TextArea).text == ""


async def test_keys_typed_as_the_settings_open_go_into_the_first_field() -> None:
    app, _ = build()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_settings(pilot)
        await pilot.press("B", "e", "space", "t", "e", "r", "s", "e")
        prompt = screen.query_one("#setting-system_prompt", TextArea)
        assert screen.focused is prompt
        assert prompt.text == "Be terse"


async def test_a_wrong_value_is_shown_as_it_is_typed_and_cleared_as_it_is_fixed() -> None:
    app, _ = build()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_settings(pilot)
        fill(pilot, "#setting-top_p", "")
        field = screen.query_one("#setting-top_p", Input)
        field.focus()
        error = screen.query_one("#error-top_p", Static)
        await pilot.press("2", ".", "5")
        await pilot.pause()
        assert field.value == "2.5"
        assert str(error.render()) == "must be at most 1"
        assert field.has_class("-invalid")
        await pilot.press("home", "delete")
        await pilot.pause()
        assert field.value == ".5"
        assert str(error.render()) == ""
        assert not field.has_class("-invalid")
        assert app.screen is screen, "a check as you type saves nothing"


async def test_the_starter_model_answers_with_saved_settings(
    starter_model: Path,
) -> None:
    services = build_services(load_config())
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_settings(pilot)
        set_system_prompt(pilot, "You are a helpful assistant. Answer briefly.")
        fill(pilot, "#setting-temperature", "0")
        fill(pilot, "#setting-max_tokens", "8")
        await pilot.press("ctrl+s")
        await pilot.pause()
        await submit(pilot, "Write a long poem about the sea.")
        conversation, records = services.history.transcript(app.conversation_id or "")
        assert conversation.system_prompt == "You are a helpful assistant. Answer briefly."
        assert (conversation.params["temperature"], conversation.params["max_tokens"]) == (0.0, 8)
        answer = records[-1]
        assert answer.role == "assistant" and answer.content.strip()
        assert answer.completion_tokens is not None and answer.completion_tokens <= 8
        assert not [n for n in app._notifications if n.severity == "error"]
    services.history.close()
