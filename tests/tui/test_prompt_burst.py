"""Keys that arrive together, as terminals deliver pasted or fast-typed text: Enter sends exactly
what was typed before it, in order, however little time lies between the keys."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from terminal_support import CTRL_Q, Terminal
from textual import events
from tui_support import SIZE, saved, scripted_app, settle

from termllm.app import build_services
from termllm.config import load_config
from termllm.tui.app import ChatApp
from termllm.tui.widgets.prompt import PromptInput

pytestmark = pytest.mark.anyio

# The key names the terminal parser gives these characters; the texts below use no others.
KEY_NAMES = {" ": "space", "\r": "enter", "\n": "ctrl+j"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def burst(app: ChatApp, text: str, *more_keys: str) -> None:
    """Queue one Key per character of `text`, then the named keys, on the app at once, as the
    driver does for one read of input: nothing runs between them."""
    keys = [events.Key(KEY_NAMES.get(c, c), c) for c in text]
    keys += [events.Key(name, None) for name in more_keys]
    for key in keys:
        key.set_sender(app)
        app.post_message(key)


@pytest.mark.parametrize(
    ("typed", "question"),
    [
        ("Say hi\r", "Say hi"),
        ("Tell me a joke about cats\r", "Tell me a joke about cats"),
        # A multi-line paste without bracketed paste: the newline key comes between the lines.
        ("alpha\nbeta\r", "alpha\nbeta"),
    ],
)
async def test_a_burst_ending_in_enter_sends_everything_typed_before_it(
    typed: str, question: str
) -> None:
    app, model = scripted_app(["Sure."])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        burst(app, typed)
        await settle(pilot)
        assert saved(app.services, app.conversation_id) == [
            ("user", question, None),
            ("assistant", "Sure.", "stop"),
        ]
        assert model.seen[-1][-1].content == question
        assert app.query_one(PromptInput).text == ""


async def test_editing_keys_in_a_burst_keep_their_turn() -> None:
    app, _ = scripted_app(["Sure."])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        burst(app, "Say hix", "backspace")
        burst(app, "ac", "left")
        burst(app, "b", "end")
        burst(app, " ok\r")
        await settle(pilot)
        assert saved(app.services, app.conversation_id)[0] == ("user", "Say hiabc ok", None)


async def test_up_in_a_burst_recalls_the_last_prompt_before_enter_sends_it() -> None:
    app, _ = scripted_app(["Sure."])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        burst(app, "first\r")
        await settle(pilot)
        burst(app, "", "up", "enter")
        await settle(pilot)
        questions = [m for m in saved(app.services, app.conversation_id) if m[0] == "user"]
        assert questions == [("user", "first", None), ("user", "first", None)]
        assert app.query_one(PromptInput).text == ""


async def test_keys_after_enter_in_the_same_burst_stay_in_the_prompt() -> None:
    app, _ = scripted_app(["Sure."])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        burst(app, "first\rnext one")
        await settle(pilot)
        assert saved(app.services, app.conversation_id)[0] == ("user", "first", None)
        assert app.query_one(PromptInput).text == "next one"


async def test_remapped_prompt_keys_also_keep_their_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERMLLM_TUI_KEYMAP", "send=f12,newline=enter")
    app, _ = scripted_app(["Sure."])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        burst(app, "ab\rc", "f12")
        await settle(pilot)
        assert saved(app.services, app.conversation_id)[0] == ("user", "ab\nc", None)
        assert app.query_one(PromptInput).text == ""


def _saved_turn(terminal: Terminal, timeout_s: float) -> list[tuple[str, str]]:
    """(role, content) of the newest conversation once it holds a question and its answer."""
    deadline = time.monotonic() + timeout_s
    services = build_services(load_config())
    try:
        while time.monotonic() < deadline:
            terminal.drain()
            recent = services.history.recent(1)
            if recent:
                _, records = services.history.transcript(recent[0].id)
                turn = [(r.role, r.content) for r in records if r.role != "system"]
                if len(turn) >= 2:
                    return turn
            time.sleep(0.2)
    finally:
        services.history.close()
    return []


def test_one_write_to_a_real_terminal_sends_the_whole_sentence(
    starter_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERMLLM_GENERATION_TEMPERATURE", "0")
    monkeypatch.setenv("TERMLLM_GENERATION_MAX_TOKENS", "4")
    with Terminal("chat") as terminal:
        assert terminal.read_until(b"Ask anything", 60), terminal.seen[-2000:]
        terminal.write(b"Tell me a joke about cats\r")
        turn = _saved_turn(terminal, 60)
        assert turn, terminal.seen[-2000:]
        terminal.write(CTRL_Q)
        assert terminal.wait(30) == 0, terminal.seen[-2000:]
    assert turn[0] == ("user", "Tell me a joke about cats")
    assert turn[1][0] == "assistant"
