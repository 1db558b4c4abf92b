"""Copying from the app: any message or code block, and a notice that says where the text went
(the system clipboard, when a desktop command took it, else the terminal's, via OSC 52)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from textual.pilot import Pilot
from tui_support import SIZE, notices, scripted_app, send, settle

from termllm.tui.clipboard import clipboard_command
from termllm.tui.widgets.messages import ConversationView, UserMessage

pytestmark = pytest.mark.anyio

CODE_ANSWER = [
    "Two blocks:\n\n```sh\necho one\n```\n\n",
    "```python\nprint('two')\nprint('three')\n```\n\nDone.",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def no_desktop(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(variable, raising=False)


def desktop_command(
    monkeypatch: pytest.MonkeyPatch, folder: Path, name: str, *, exit_code: int = 0
) -> Path:
    """An executable `name` first on PATH that keeps what it reads (the clipboard) in a file."""
    taken = folder / "clipboard.txt"
    script = folder / name
    script.write_text(f'#!/bin/sh\ncat > "{taken}"\nexit {exit_code}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    return taken


async def press(pilot: Pilot[None], *keys: str) -> None:
    await pilot.press(*keys)
    await settle(pilot)


@pytest.mark.usefixtures("no_desktop")
async def test_without_a_desktop_clipboard_it_says_the_terminal_was_asked() -> None:
    app, _ = scripted_app(CODE_ANSWER)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Code please")
        await press(pilot, "ctrl+o")
        assert app.clipboard == "".join(CODE_ANSWER)
        assert notices(app)[-1] == "sent the answer (12 lines) to the terminal's clipboard (OSC 52)"


async def test_a_desktop_command_takes_the_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    taken = desktop_command(monkeypatch, tmp_path, "wl-copy")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    app, _ = scripted_app(CODE_ANSWER)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Code please")
        await press(pilot, "ctrl+o")
        assert taken.read_text() == "".join(CODE_ANSWER)
        assert notices(app)[-1] == "copied the answer (12 lines) to the clipboard"


async def test_a_failing_desktop_command_is_not_called_a_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    desktop_command(monkeypatch, tmp_path, "xclip", exit_code=1)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    app, _ = scripted_app(CODE_ANSWER)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Code please")
        await press(pilot, "ctrl+b")
        assert app.clipboard == "print('two')\nprint('three')"
        assert notices(app)[-1] == (
            "sent the python code block 2/2 (2 lines) to the terminal's clipboard (OSC 52):"
            " xclip failed"
        )


@pytest.mark.usefixtures("no_desktop")
async def test_any_message_and_any_code_block_can_be_copied() -> None:
    app, _ = scripted_app(CODE_ANSWER)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "First question")
        await send(pilot, "Second question")
        view = app.query_one(ConversationView)

        await press(pilot, "alt+up", "alt+up")
        selected = view.selected_message
        assert isinstance(selected, UserMessage) and selected.text == "Second question"
        assert selected.has_class("selected")
        await press(pilot, "ctrl+o")
        assert app.clipboard == "Second question"
        assert notices(app)[-1].startswith("sent the question (1 line)")

        await press(pilot, "alt+up", "alt+up", "alt+up")
        selected = view.selected_message
        assert isinstance(selected, UserMessage) and selected.text == "First question"
        await press(pilot, "ctrl+b")
        assert notices(app)[-1].startswith("the selected message has no code block")

        # The first answer's blocks, the last first, then the one before, then round again.
        await press(pilot, "alt+down", "ctrl+b")
        assert app.clipboard == "print('two')\nprint('three')"
        await press(pilot, "ctrl+b")
        assert app.clipboard == "echo one"
        assert notices(app)[-1].startswith("sent the sh code block 1/2 (1 line)")
        await press(pilot, "ctrl+b")
        assert app.clipboard == "print('two')\nprint('three')"

        # Esc leaves the selection; the keys act on the last answer again.
        await press(pilot, "escape")
        assert view.selected_message is None
        assert not view.query(".selected")
        await press(pilot, "alt+down")
        assert view.selected_message is None
        await press(pilot, "alt+up", "alt+down")
        assert view.selected_message is None


def test_the_clipboard_command_for_each_desktop() -> None:
    installed = {"pbcopy", "wl-copy", "xsel"}

    def which(name: str) -> str | None:
        return f"/usr/bin/{name}" if name in installed else None

    assert clipboard_command({}, "darwin", which) == ["/usr/bin/pbcopy"]
    assert clipboard_command({}, "linux", which) is None, "no display: over SSH, say"
    assert clipboard_command({"WAYLAND_DISPLAY": "w"}, "linux", which) == ["/usr/bin/wl-copy"]
    assert clipboard_command({"DISPLAY": ":0"}, "linux", which) == [
        "/usr/bin/xsel",
        "--clipboard",
        "--input",
    ]
    installed.add("xclip")
    assert clipboard_command({"DISPLAY": ":0"}, "linux", which) == [
        "/usr/bin/xclip",
        "-selection",
        "clipboard",
        "-in",
    ]
