"""Regenerate, edit, alternatives and copy in the running app: scripted engine for control, the
starter model for truth, the database rows checked each time."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from tui_support import SIZE, notices, scripted_app, scripted_services, send, settle

from termllm.app import Services, build_services
from termllm.config import load_config
from termllm.store import MessageRecord
from termllm.tui.app import ChatApp
from termllm.tui.widgets.messages import AnswerView, ConversationView, UserMessage
from termllm.tui.widgets.prompt import PromptInput

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def press(pilot: Pilot[None], *keys: str) -> None:
    await pilot.press(*keys)
    await settle(pilot)


def shown(app: ChatApp) -> list[tuple[str, str, str]]:
    """(role, text, border subtitle without the space that parts it from the border) of each
    message on screen."""
    rows: list[tuple[str, str, str]] = []
    for child in app.query_one(ConversationView).children:
        label = str(child.border_subtitle or "").strip()
        if isinstance(child, UserMessage):
            rows.append(("user", str(child.content), label))
        elif isinstance(child, AnswerView):
            rows.append(("assistant", child.source, label))
    return rows


def every(services: Services, app: ChatApp) -> list[MessageRecord]:
    assert app.conversation_id is not None
    return services.history.store.messages(app.conversation_id)


def continued(services: Services, app: ChatApp) -> list[str]:
    """What `ask -c` (and the next prompt) would send."""
    return [m.content for m in services.history.resume(app.conversation_id).messages]


async def test_regenerate_adds_a_sibling_answer_and_flipping_chooses_the_branch() -> None:
    services, model = scripted_services(["First answer."])
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Hi")
        model.answer = ["Second answer."]
        await press(pilot, "ctrl+r")

        question, first, second = every(services, app)
        assert (question.role, first.parent_id, second.parent_id) == (
            "user",
            question.id,
            question.id,
        )
        assert (first.content, second.content, second.finish_reason) == (
            "First answer.",
            "Second answer.",
            "stop",
        )
        # The question was sent again, not saved again.
        assert [m.content for m in model.seen[-1]] == ["Hi"]
        assert shown(app) == [
            ("user", "Hi", ""),
            ("assistant", "Second answer.", "alternative 2/2"),
        ]
        assert continued(services, app) == ["Hi", "Second answer."]

        await press(pilot, "alt+left")
        assert shown(app) == [("user", "Hi", ""), ("assistant", "First answer.", "alternative 1/2")]
        assert continued(services, app) == ["Hi", "First answer."]
        await press(pilot, "alt+left")  # Already the first: nothing changes.
        assert continued(services, app) == ["Hi", "First answer."]

        # The next question continues the chosen answer.
        model.answer = ["More."]
        await send(pilot, "Go on")
        assert [m.content for m in model.seen[-1]] == ["Hi", "First answer.", "Go on"]
        await press(pilot, "alt+right")
        assert shown(app)[-1] == ("assistant", "Second answer.", "alternative 2/2")
        conversation_id = app.conversation_id

    # The choice survives a restart.
    app = ChatApp(services, conversation_id=conversation_id)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert shown(app) == [
            ("user", "Hi", ""),
            ("assistant", "Second answer.", "alternative 2/2"),
        ]


async def test_editing_the_last_question_sends_a_sibling_and_keeps_the_original() -> None:
    services, model = scripted_services(["Answer one."])
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Fisrt question")
        await send(pilot, "Second question")
        await press(pilot, "ctrl+g")
        prompt = app.query_one(PromptInput)
        assert prompt.text == "Second question" and prompt.has_focus
        assert prompt.border_title == "Editing your last question · Esc keeps the original"
        prompt.clear()
        model.answer = ["Answer two."]
        await send(pilot, "Second question, better")

        messages = every(services, app)
        original, edited = (m for m in messages if m.content.startswith("Second question"))
        assert edited.parent_id == original.parent_id is not None
        assert [m.content for m in messages if m.parent_id == edited.id] == ["Answer two."]
        assert [m.content for m in messages if m.parent_id == original.id] == ["Answer one."]
        assert [m.content for m in model.seen[-1]] == [
            "Fisrt question",
            "Answer one.",
            "Second question, better",
        ]
        assert shown(app)[-2:] == [
            ("user", "Second question, better", "alternative 2/2"),
            ("assistant", "Answer two.", ""),
        ]
        assert prompt.border_title == "" and prompt.text == ""

        # The alternative keys flip the edited question back to the original and its answer.
        await press(pilot, "alt+left")
        assert shown(app)[-2:] == [
            ("user", "Second question", "alternative 1/2"),
            ("assistant", "Answer one.", ""),
        ]
        assert continued(services, app)[-2:] == ["Second question", "Answer one."]


async def test_escape_while_editing_keeps_the_original_question() -> None:
    app, model = scripted_app(["Fine."])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Question")
        await press(pilot, "ctrl+g")
        await press(pilot, "escape")
        prompt = app.query_one(PromptInput)
        assert prompt.text == "" and prompt.border_title == ""
        await send(pilot, "Another")
        # Sent as a follow-up, not as an edit.
        assert [m.content for m in model.seen[-1]] == ["Question", "Fine.", "Another"]
        assert len(every(app.services, app)) == 4


async def test_escape_cancels_a_regenerated_answer_and_keeps_both() -> None:
    app, model = scripted_app(["Quick."])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Count")
        model.answer, model.delay_s = [f"w{i} " for i in range(300)], 0.01
        await pilot.press("ctrl+r")
        answer = app.query(AnswerView).last()
        while "w2" not in answer.source:
            await pilot.pause(0.02)
        await press(pilot, "escape")
        _, quick, cancelled = every(app.services, app)
        assert quick.content == "Quick."
        assert cancelled.finish_reason == "cancelled" and cancelled.parent_id == quick.parent_id
        assert answer.border_subtitle == "cancelled · alternative 2/2"
        assert not app.generating


async def test_the_keys_explain_themselves_when_there_is_nothing_to_act_on() -> None:
    app, _ = scripted_app(["Plain text, no code."])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for key in ("ctrl+r", "ctrl+g", "alt+left", "ctrl+o", "ctrl+b"):
            await press(pilot, key)
        assert notices(app) == [
            "no question to answer again yet",
            "no question to edit yet",
            "no alternatives here yet: regenerate or edit to make one",
            "no answer to copy yet",
            "the last answer has no code block",
        ]
        await send(pilot, "Hi")
        await press(pilot, "alt+right", "ctrl+b")
        assert notices(app)[-2:] == [
            "no alternatives here yet: regenerate or edit to make one",
            "the last answer has no code block",
        ]
        assert app.conversation_id is not None and app.is_running


async def test_regenerating_while_an_answer_streams_is_refused() -> None:
    app, _ = scripted_app([f"w{i} " for i in range(300)], delay_s=0.01)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.query_one(PromptInput).insert("Go")
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("ctrl+r", "ctrl+g", "alt+left", "escape")
        await settle(pilot)
        assert notices(app).count("an answer is still streaming: Esc cancels it") == 3
        assert [m.role for m in every(app.services, app)] == ["user", "assistant"]


async def test_the_actions_are_in_the_command_palette_and_the_help() -> None:
    app, _ = scripted_app(["Listed."])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Hi")
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        for title in (
            "Regenerate the answer",
            "Previous alternative",
            "Next alternative",
            "Edit the last question",
            "Copy the selection or the last answer",
            "Copy its code block (again: previous)",
        ):
            assert title in commands
        await commands["Regenerate the answer"].callback()  # type: ignore[misc]
        await settle(pilot)
        assert [m.role for m in every(app.services, app)] == ["user", "assistant", "assistant"]
        await press(pilot, "f1")
        text = str(app.screen.query_one("#help-box Static").render())
        for line in ("ctrl+r", "Regenerate the answer", "alt+left", "Next alternative", "ctrl+b"):
            assert line in text


async def test_the_starter_model_regenerates_and_the_chosen_answer_is_continued(
    starter_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERMLLM_GENERATION_TEMPERATURE", "0")
    monkeypatch.setenv("TERMLLM_GENERATION_MAX_TOKENS", "12")
    services = build_services(load_config())
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Name a fruit.")
        await press(pilot, "ctrl+r")
        question, first, second = every(services, app)
        assert first.parent_id == second.parent_id == question.id
        assert first.content.strip() and second.content.strip()
        assert {first.finish_reason, second.finish_reason} <= {"stop", "length"}
        assert services.history.resume(app.conversation_id).leaf_id == second.id

        await press(pilot, "alt+left")
        assert services.history.resume(app.conversation_id).leaf_id == first.id
        assert shown(app) == [
            ("user", "Name a fruit.", ""),
            ("assistant", first.content, "alternative 1/2"),
        ]
        # The next question goes to the model with the chosen answer before it.
        await send(pilot, "Another one?")
        follow_up = every(services, app)[-2]
        assert (follow_up.content, follow_up.parent_id) == ("Another one?", first.id)
        assert not notices(app)
    services.history.close()
