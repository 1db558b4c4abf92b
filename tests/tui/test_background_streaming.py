"""An answer keeps streaming while the user looks at other conversations, and is saved."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from textual.pilot import Pilot
from tui_support import SIZE, saved, scripted_app, shown

from termllm.app import build_services
from termllm.config import load_config
from termllm.tui.app import ChatApp
from termllm.tui.widgets.messages import AnswerView
from termllm.tui.widgets.prompt import PromptInput
from termllm.tui.widgets.sidebar import BUSY_MARK, ConversationList
from termllm.tui.widgets.status import StatusBar

pytestmark = pytest.mark.anyio

COUNT = [f"w{i} " for i in range(150)]
BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "tui_stream.py"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def start(pilot: Pilot[None], text: str) -> None:
    """Send `text` and wait until its answer has begun to show."""
    pilot.app.query_one(PromptInput).insert(text)
    await pilot.press("enter")
    answer = pilot.app.query(AnswerView).last()
    while not answer.source:
        await pilot.pause(0.02)


async def choose(pilot: Pilot[None], conversation_id: str) -> None:
    sidebar = pilot.app.query_one(ConversationList)
    sidebar.focus()
    sidebar.highlighted = sidebar.get_option_index(conversation_id)
    await pilot.press("enter")
    await pilot.pause()


async def leave_streaming(pilot: Pilot[None]) -> str:
    """Ask "Count", and once its answer streams, go to a new conversation; the id of the
    conversation left answering."""
    await pilot.app.workers.wait_for_complete()
    await start(pilot, "Count")
    busy = pilot.app.conversation_id
    assert isinstance(busy, str)
    await pilot.press("ctrl+n")
    return busy


async def finished(pilot: Pilot[None]) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_an_answer_streams_on_in_the_background_and_shows_again_when_chosen() -> None:
    app, _ = scripted_app(COUNT, delay_s=0.01)
    async with app.run_test(size=SIZE) as pilot:
        busy = await leave_streaming(pilot)
        assert app.conversation_id is None and shown(app) == []
        assert app.generating
        status = app.query_one(StatusBar).info
        assert status.busy == "answering in another conversation"
        sidebar = app.query_one(ConversationList)
        assert str(sidebar.get_option(busy).prompt).startswith(BUSY_MARK)
        # One answer at a time: sending elsewhere says so and saves nothing.
        app.query_one(PromptInput).insert("Meanwhile")
        await pilot.press("enter")
        assert any("another conversation" in n.message for n in app._notifications)
        assert len(app.services.history.recent(None)) == 1

        await choose(pilot, busy)
        assert app.conversation_id == busy
        (question, (role, partial)) = shown(app)
        assert question == ("user", "Count") and role == "assistant"
        assert partial.startswith("w0 ") and len(partial.split()) < len(COUNT)
        assert app.query_one(StatusBar).info.busy == "answering"
        await finished(pilot)
        full = "".join(COUNT)
        assert shown(app) == [("user", "Count"), ("assistant", full)]
        assert saved(app.services, busy) == [("user", "Count", None), ("assistant", full, "stop")]
        assert not str(sidebar.get_option(busy).prompt).startswith(BUSY_MARK)
        assert app.query_one(StatusBar).info.busy == ""


async def test_an_answer_finished_in_the_background_is_saved_and_the_new_one_stays_new() -> None:
    app, _ = scripted_app(COUNT, delay_s=0.005)
    async with app.run_test(size=SIZE) as pilot:
        busy = await leave_streaming(pilot)
        await finished(pilot)
        assert app.conversation_id is None and shown(app) == []
        assert saved(app.services, busy)[-1] == ("assistant", "".join(COUNT), "stop")
        await choose(pilot, busy)
        assert shown(app) == [("user", "Count"), ("assistant", "".join(COUNT))]


async def test_escape_cancels_the_answer_from_another_conversation() -> None:
    app, _ = scripted_app(COUNT, delay_s=0.02)
    async with app.run_test(size=SIZE) as pilot:
        busy = await leave_streaming(pilot)
        await pilot.press("escape")
        await finished(pilot)
        role, content, reason = saved(app.services, busy)[-1]
        assert (role, reason) == ("assistant", "cancelled")
        assert content.startswith("w0 ") and len(content.split()) < len(COUNT)
        assert not app.generating and shown(app) == []


async def test_the_starter_model_cancels_and_streams_in_the_background(
    starter_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERMLLM_GENERATION_TEMPERATURE", "0")
    # Long enough that Esc, pressed once the first words show, lands mid-answer.
    monkeypatch.setenv("TERMLLM_GENERATION_MAX_TOKENS", "400")
    services = build_services(load_config())
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await start(pilot, "Write a long story about a lighthouse keeper and a storm.")
        await pilot.press("escape")
        await finished(pilot)
        first = app.conversation_id
        assert first is not None
        (_, _, _), (role, partial, reason) = saved(services, first)
        assert (role, reason) == ("assistant", "cancelled") and partial.strip()
        assert shown(app)[-1] == ("assistant", partial)

        # Away at once, while the answer streams (how long it runs depends on where the first
        # one was cancelled, so the scripted tests pin down the in-between states).
        app.query_one(PromptInput).insert("Now tell it again, in other words.")
        await pilot.press("enter", "ctrl+n")
        await finished(pilot)
        assert app.conversation_id is None
        (*_, (role, answer, reason)) = saved(services, first)
        assert role == "assistant" and reason in {"stop", "length"} and answer.strip()
        await choose(pilot, first)
        assert shown(app)[-1] == ("assistant", answer)
        assert not app._notifications
    services.history.close()


def test_the_benchmark_runs_in_a_tiny_configuration() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCHMARK),
            "--json",
            "--no-real",
            "--tokens",
            "200",
            "--paced-tokens",
            "40",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(completed.stdout)
    assert report["fast"]["tokens"] == 200 and report["fast"]["max_stall_ms"] >= 0
    assert report["paced"]["ui_cpu_percent_of_core"] >= 0
