"""Nothing typed in the prompt is lost: a send refused while an answer streams leaves the text in
the prompt, and a draft set aside by Ctrl+G comes back when the edit ends."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from tui_support import SIZE, saved, scripted_app, send, settle

from termllm.tui.widgets.prompt import PromptInput

pytestmark = pytest.mark.anyio

SLOW = [f"w{i} " for i in range(200)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def prompt_text(pilot: Pilot[None]) -> str:
    return pilot.app.query_one(PromptInput).text


async def test_a_send_refused_while_an_answer_streams_keeps_the_text() -> None:
    app, _ = scripted_app(SLOW, delay_s=0.01)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(PromptInput).insert("Count")
        await pilot.press("enter")
        await pilot.pause()
        assert app.generating
        app.query_one(PromptInput).insert("my follow-up")
        await pilot.press("enter")
        await pilot.pause()
        assert any("still streaming" in n.message for n in app._notifications)
        assert prompt_text(pilot) == "my follow-up"
        await pilot.press("escape")
        await settle(pilot)
        # Once the answer is done, the same Enter sends it.
        await pilot.press("enter")
        await settle(pilot)
        assert prompt_text(pilot) == ""
        assert [row[1] for row in saved(app.services, app.conversation_id)][2] == "my follow-up"


async def edit_over_a_draft(pilot: Pilot[None]) -> None:
    """Ask once, type a draft, then Ctrl+G: the last question replaces the draft in the prompt."""
    await send(pilot, "First question")
    pilot.app.query_one(PromptInput).insert("my draft")
    await pilot.press("ctrl+g")
    await pilot.pause()
    assert prompt_text(pilot) == "First question"


async def test_escape_from_an_edit_gives_the_draft_back() -> None:
    app, _ = scripted_app(["Sure."])
    async with app.run_test(size=SIZE) as pilot:
        await edit_over_a_draft(pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert prompt_text(pilot) == "my draft"


async def test_sending_an_edit_gives_the_draft_back() -> None:
    app, _ = scripted_app(["Sure."])
    async with app.run_test(size=SIZE) as pilot:
        await edit_over_a_draft(pilot)
        prompt = app.query_one(PromptInput)
        prompt.clear()
        prompt.insert("Edited question")
        await pilot.press("enter")
        await settle(pilot)
        assert saved(app.services, app.conversation_id)[0][1] == "Edited question"
        assert prompt_text(pilot) == "my draft"
