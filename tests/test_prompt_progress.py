"""A long prompt shows that it is being read: the turn passes the engine's progress on, the app
shows it in the status bar with the context meter, and `ask` on a terminal says it on stderr."""

from __future__ import annotations

import io
import threading

import pytest
from fake_engine import ScriptedEngine, ScriptedModel
from textual.pilot import Pilot
from tui_support import SIZE, settle

from termllm.app import build_services
from termllm.cli.ask_turn import AskListener
from termllm.config import load_config
from termllm.services.turn import NewQuestion, TurnListener, TurnOptions
from termllm.tui.app import ChatApp
from termllm.tui.widgets.prompt import PromptInput
from termllm.tui.widgets.status import StatusBar

pytestmark = pytest.mark.anyio

READING = [(0, 2048), (512, 2048), (1024, 2048), (1536, 2048), (2048, 2048)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Heard(TurnListener):
    def __init__(self) -> None:
        self.events: list[object] = []

    def reading(self, read: int, total: int) -> None:
        self.events.append((read, total))

    def text(self, piece: str) -> None:
        self.events.append(piece)


def test_the_turn_passes_the_reading_progress_on_before_the_answer(starter_model: object) -> None:
    model = ScriptedModel(["Done."], reading=READING)
    services = build_services(load_config(), engine_factory=lambda: ScriptedEngine(model))
    heard = Heard()
    services.turns.run(NewQuestion("long text"), TurnOptions(), heard, threading.Event())
    assert heard.events == [*READING, "Done."]


async def test_the_app_shows_the_reading_and_the_context_meter_at_once(
    starter_model: object,
) -> None:
    model = ScriptedModel(["Done."], reading=READING, delay_s=0.3)
    services = build_services(load_config(), engine_factory=lambda: ScriptedEngine(model))
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        app.query_one(PromptInput).insert("a long pasted text")
        await pilot.press("enter")
        status = app.query_one(StatusBar)
        seen = await watch(pilot, status)
        assert "reading the prompt 512/2048" in seen
        assert status.info.used_tokens >= 2048
        await settle(pilot)


async def watch(pilot: Pilot[None], status: StatusBar) -> set[str]:
    """The busy texts the status bar shows while the prompt is read."""
    seen: set[str] = set()
    for _ in range(100):
        await pilot.pause(0.05)
        busy = status.info.busy
        seen.add(busy)
        if busy == "answering" and any(text.startswith("reading") for text in seen):
            break
    return seen


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_ask_on_a_terminal_says_how_far_reading_a_long_prompt_got(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stderr = FakeTerminal()
    monkeypatch.setattr("sys.stderr", stderr)
    listener = AskListener(None, verbose=False)
    for read, total in READING[:3]:
        listener.reading(read, total)
    listener.text("Done.")
    listener.reading(2048, 2048)
    assert "reading the prompt: 1024/2048 tokens" in stderr.getvalue()


def test_a_short_prompt_shows_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = FakeTerminal()
    monkeypatch.setattr("sys.stderr", stderr)
    listener = AskListener(None, verbose=False)
    listener.reading(0, 40)
    listener.reading(40, 40)
    assert stderr.getvalue() == ""
