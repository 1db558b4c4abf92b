"""A long prompt shows that it is being read: the turn passes the engine's progress on, the app
shows it in the answer's place and in the status bar with the context meter, and `ask` on a
terminal says it on stderr, with the speed and the time left."""

from __future__ import annotations

import io
import re
import threading
import time

import pytest
from fake_engine import ScriptedEngine, ScriptedModel
from terminal_support import Terminal
from textual.pilot import Pilot
from tui_support import SIZE, settle

from termllm.app import build_services
from termllm.cli.ask_turn import AskListener
from termllm.config import load_config
from termllm.services.turn import NewQuestion, ReadingPace, TurnListener, TurnOptions
from termllm.tui.app import ChatApp
from termllm.tui.widgets.answer import AnswerView
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
        seen, in_answer = await watch(pilot, app, status)
        assert any(re.fullmatch(r"reading the prompt 512/2048 · \d s left", busy) for busy in seen)
        assert any(line.startswith("reading the prompt: 1024/2048 tokens · ") for line in in_answer)
        assert status.info.used_tokens >= 2048
        await settle(pilot)
        assert app.query(AnswerView).last().render_line(0).text.strip() == "Done."


async def watch(pilot: Pilot[None], app: ChatApp, status: StatusBar) -> tuple[set[str], set[str]]:
    """The busy texts the status bar shows while the prompt is read, and the first line of the
    answer meanwhile."""
    seen: set[str] = set()
    in_answer: set[str] = set()
    for _ in range(100):
        await pilot.pause(0.05)
        busy = status.info.busy
        seen.add(busy)
        live = app.live
        if live is not None and live.view is not None:
            in_answer.add(live.view.render_line(0).text.strip())
        if busy == "answering" and any(text.startswith("reading") for text in seen):
            break
    return seen, in_answer


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
        time.sleep(0.01)
    listener.text("Done.")
    listener.reading(2048, 2048)
    said = stderr.getvalue()
    assert re.search(r"reading the prompt: 1024/2048 tokens · \d+ tok/s · \d+ s left", said)


def test_the_pace_says_the_speed_and_the_time_left_from_the_first_report() -> None:
    now = [100.0]
    pace = ReadingPace(clock=lambda: now[0])
    assert str(pace.update(500, 20_500)) == "500/20500 tokens", "500 were cached"
    now[0] += 2.0
    after_a_batch = pace.update(1012, 20_500)
    assert str(after_a_batch) == "1012/20500 tokens · 256 tok/s · 1 min 17 s left"
    now[0] += 70.0
    assert str(pace.update(19_000, 20_500)) == "19000/20500 tokens · 257 tok/s · 6 s left"
    assert pace.update(20_500, 20_500) is None, "read: nothing more to show"


def test_a_prompt_mostly_cached_shows_nothing() -> None:
    pace = ReadingPace()
    assert pace.update(2000, 2100) is None
    assert pace.update(2099, 2100) is None


def test_ask_in_a_terminal_shows_the_reading_of_a_long_prompt(starter_model: object) -> None:
    """The real thing: a prompt of some 2,000 tokens read in four batches."""
    prompt = " ".join(f"Item {n} of the list is a box of {n % 13} apples." for n in range(160))
    args = ("ask", "--no-save", "--threads", "1", "--max-tokens", "1", prompt)
    with Terminal(*args) as terminal:
        assert terminal.wait(240) == 0, terminal.seen.decode(errors="replace")
    said = terminal.seen.decode(errors="replace")
    assert re.search(r"reading the prompt: \d+/\d+ tokens · \d+ tok/s · [\d a-z]+ left", said), said


def test_a_short_prompt_shows_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = FakeTerminal()
    monkeypatch.setattr("sys.stderr", stderr)
    listener = AskListener(None, verbose=False)
    listener.reading(0, 40)
    listener.reading(40, 40)
    assert stderr.getvalue() == ""
