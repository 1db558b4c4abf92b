"""The chat app driven through Pilot: scripted engine for control, the starter model for truth."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import anyio
import pytest
from tui_support import SIZE, saved, scripted_app, scripted_services, send, settle, shown

from termllm.app import build_services
from termllm.cli import chat_cmd
from termllm.cli.main import _invoke
from termllm.config import load_config
from termllm.domain import GenParams
from termllm.engine.base import LoadedModel, LoadRequest
from termllm.errors import ModelLoadError
from termllm.tui.app import GIL_SWITCH_S, ChatApp
from termllm.tui.screens.help import HelpScreen
from termllm.tui.widgets.messages import AnswerView
from termllm.tui.widgets.prompt import PromptInput
from termllm.tui.widgets.sidebar import ConversationList
from termllm.tui.widgets.status import StatusBar

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_prompt_is_answered_and_both_messages_are_saved() -> None:
    app, model = scripted_app(["Hello", " there."])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.app.workers.wait_for_complete()
        await send(pilot, "Hi")
        assert shown(app) == [("user", "Hi"), ("assistant", "Hello there.")]
        assert saved(app.services, app.conversation_id) == [
            ("user", "Hi", None),
            ("assistant", "Hello there.", "stop"),
        ]
        assert model.seen[-1][-1].content == "Hi"
        status = app.query_one(StatusBar).info
        assert (status.placement, status.n_ctx, status.tokens_per_s) == ("CPU", 4096, 100.0)
        assert status.used_tokens > 0
        assert [o.id for o in app.query_one(ConversationList).options] == [app.conversation_id]
        assert not app.screen.query(".-error")


async def test_the_second_prompt_continues_the_conversation() -> None:
    app, model = scripted_app(["Sure."])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "One")
        first = app.conversation_id
        await send(pilot, "Two")
        assert app.conversation_id == first
        assert [m.content for m in model.seen[-1]] == ["One", "Sure.", "Two"]
        assert len(saved(app.services, first)) == 4


async def test_shift_enter_and_ctrl_j_insert_newlines_instead_of_sending() -> None:
    app, _ = scripted_app(["ok"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a", "shift+enter", "b", "ctrl+j", "c")
        assert app.query_one(PromptInput).text == "a\nb\nc"
        assert app.conversation_id is None
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert shown(app)[0] == ("user", "a\nb\nc")
        assert app.query_one(PromptInput).text == ""


async def test_escape_cancels_and_keeps_the_partial_answer() -> None:
    app, _ = scripted_app([f"w{i} " for i in range(200)], delay_s=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.app.workers.wait_for_complete()
        app.query_one(PromptInput).insert("Count")
        await pilot.press("enter")
        answer = app.query_one(AnswerView)
        while "w2" not in answer.source:
            await pilot.pause(0.02)
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        _, (role, content, reason) = saved(app.services, app.conversation_id)
        assert (role, reason) == ("assistant", "cancelled")
        assert content.startswith("w0 w1 w2") and len(content.split()) < 200
        assert answer.source == content
        assert answer.has_class("ended-cancelled")
        assert not app.generating


async def test_choosing_a_conversation_in_the_sidebar_shows_it() -> None:
    services, _ = scripted_services(["An answer."])
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "First question")
        first = app.conversation_id
        await pilot.press("ctrl+n")
        assert shown(app) == [] and app.conversation_id is None
        await send(pilot, "Second question")
        second = app.conversation_id
        assert second != first
        sidebar = app.query_one(ConversationList)
        assert [o.id for o in sidebar.options] == [second, first]
        await pilot.press("ctrl+l")
        assert sidebar.has_focus
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.conversation_id == first
        assert shown(app) == [("user", "First question"), ("assistant", "An answer.")]


async def test_the_app_opens_a_conversation_given_by_id() -> None:
    services, _ = scripted_services(["Stored."])
    async with ChatApp(services).run_test(size=SIZE) as pilot:
        await send(pilot, "Remember me")
        conversation_id = pilot.app.conversation_id
    assert conversation_id is not None
    app = ChatApp(services, conversation_id=conversation_id[:6])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.conversation_id == conversation_id
        assert shown(app) == [("user", "Remember me"), ("assistant", "Stored.")]


async def test_the_help_screen_opens_and_closes() -> None:
    app, _ = scripted_app(["ok"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-box Static").render())
        assert "ctrl+n" in text and "New conversation" in text and "Send" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        assert app.query_one(PromptInput).has_focus


class FailingEngine:
    def load(self, request: LoadRequest) -> LoadedModel:
        raise ModelLoadError(f"cannot load {request.model_path.name}: scripted failure")


async def test_a_load_failure_is_a_notification_and_the_app_keeps_running() -> None:
    services = build_services(load_config(), engine_factory=FailingEngine)
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert any("scripted failure" in n.message for n in app._notifications)
        await send(pilot, "Still there?")
        assert app.is_running
        # The question is kept with the reason it got no answer, to be answered again later.
        assert saved(services, app.conversation_id) == [
            ("user", "Still there?", None),
            ("assistant", "", "error"),
        ]
        answer = services.history.transcript(app.conversation_id)[1][-1]
        assert answer.error is not None and "scripted failure" in answer.error
        assert app.query_one(AnswerView).has_class("ended-error")
        assert not app.generating
        # The failed first turn is a conversation: its question can be answered again.
        await pilot.press("ctrl+r")
        await settle(pilot)
        conversation = services.history.find(app.conversation_id or "")
        assert conversation.message_count == 3
        assert not any("no question" in n.message for n in app._notifications)
        # Opened again from the history, a failed answer still says why.
        await app.show_conversation(app.conversation_id)
        assert "scripted failure" in str(app.query(AnswerView).last().border_subtitle)


async def test_a_generation_error_keeps_the_partial_answer_with_its_reason() -> None:
    app, model = scripted_app(["Half", " an", " answer"])
    model.fail_after = 2
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "Go")
        assert saved(app.services, app.conversation_id)[-1] == ("assistant", "Half an", "error")
        assert any("scripted failure" in n.message for n in app._notifications)


async def test_an_unknown_model_is_a_notification() -> None:
    services, _ = scripted_services(["ok"])
    app = ChatApp(services, model_ref="no-such-model")
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app._notifications
        assert app.is_running


async def test_the_starter_model_answers_inside_the_running_app(
    starter_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERMLLM_GENERATION_TEMPERATURE", "0")
    monkeypatch.setenv("TERMLLM_GENERATION_MAX_TOKENS", "16")
    services = build_services(load_config())
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await send(pilot, "Say hi")
        (_, question, _), (role, answer, reason) = saved(services, app.conversation_id)
        assert (question, role, reason in {"stop", "length"}) == ("Say hi", "assistant", True)
        assert answer.strip()
        assert shown(app) == [("user", "Say hi"), ("assistant", answer)]
        assert not app._notifications
        # The screen still shows the app: native output written over it would leave no prompt
        # border or status line at their places.
        lines = app.export_screenshot()
        assert "Conversations" in lines and "tok/s" in lines
        status = app.query_one(StatusBar).info
        assert status.model == "SmolLM2-135M-Instruct.Q4_1" and status.tokens_per_s
    services.history.close()


async def test_quitting_while_an_answer_streams_saves_it_as_cancelled() -> None:
    app, _ = scripted_app([f"w{i} " for i in range(500)], delay_s=0.01)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(PromptInput).insert("Count")
        await pilot.press("enter")
        while "w1" not in app.query_one(AnswerView).source:
            await pilot.pause(0.02)
        await pilot.press("ctrl+q")

    def answer_saved() -> bool:
        # The worker thread outlives the app by at most one token, then saves.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if len(saved(app.services, app.conversation_id)) == 2:
                return True
            time.sleep(0.02)
        return False

    assert await anyio.to_thread.run_sync(answer_saved)
    assert saved(app.services, app.conversation_id)[-1][2] == "cancelled"


def test_bare_termllm_and_chat_open_the_app(
    monkeypatch: pytest.MonkeyPatch, starter_model: Path
) -> None:
    opened: list[tuple[str | None, str | None]] = []

    def run(self: ChatApp) -> None:
        opened.append((self.session.model_ref, self.requested_conversation))

    monkeypatch.setattr(ChatApp, "run", run)
    # pytest's captured streams are no terminal; tests/cli/test_chat_cli.py checks real ones.
    monkeypatch.setattr(chat_cmd, "_on_a_terminal", lambda: True)
    history = build_services(load_config()).history
    started = history.start(None, None, GenParams(), "Hi")
    history.close()
    model = "SmolLM2-135M-Instruct.Q4_1"
    assert _invoke([], debug=False) == 0
    assert _invoke(["chat", "-m", model, "--cid", started.id[:6]], debug=False) == 0
    assert opened == [(None, None), (model, started.id)]


async def test_the_gil_interval_is_short_while_the_app_runs_and_restored_after() -> None:
    before = sys.getswitchinterval()
    app, _ = scripted_app(["ok"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_S)
    assert sys.getswitchinterval() == pytest.approx(before)
