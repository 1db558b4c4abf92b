"""`termllm chat` and bare `termllm` refuse what they cannot use before the app opens: no terminal,
an unknown conversation or model. Run as users run them: with pipes, and in a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from terminal_support import CTRL_Q, Terminal
from termllm_cli import termllm_process

NO_TERMINAL = "termllm: error: the chat app needs a terminal; use `termllm ask` for pipes\n"
ALT_SCREEN = b"\x1b[?1049h"
# Generous bounds that only stop a hung app from hanging the suite; failures take about a second.
QUICK_S = 30
APP_START_S = 60


@dataclass(frozen=True)
class Screen:
    code: int
    seen: bytes


def in_a_terminal(*args: str, quit_once: bytes | None = None) -> Screen:
    """`termllm ARGS` with stdin, stdout and stderr on a pty; once `quit_once` is on the screen,
    ctrl+q is typed. Everything the process wrote is returned, escape codes included."""
    with Terminal(*args) as terminal:
        if quit_once is not None and terminal.read_until(quit_once, APP_START_S):
            terminal.write(CTRL_Q)
        code = terminal.wait(QUICK_S)
    assert code is not None, terminal.seen[-2000:]
    return Screen(code, bytes(terminal.seen))


@pytest.mark.parametrize("args", [("chat",), ()], ids=["chat", "bare"])
def test_without_a_terminal_the_app_refuses_in_one_line(args: tuple[str, ...]) -> None:
    result = termllm_process(*args, timeout=QUICK_S)
    assert (result.code, result.out, result.err) == (2, "", NO_TERMINAL)


def test_a_terminal_on_stdin_alone_is_not_enough() -> None:
    leader, follower = pty.openpty()
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "termllm", "chat"],
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=QUICK_S,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert (completed.returncode, completed.stdout, completed.stderr) == (2, "", NO_TERMINAL)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cid", "zzzzzz"), "termllm: error: no conversation 'zzzzzz'\n"),
        (
            ("-m", "nonexistent"),
            "termllm: error: no local model matches 'nonexistent':"
            " run `termllm ls` to see local models\n",
        ),
    ],
    ids=["cid", "model"],
)
def test_a_bad_argument_fails_as_it_does_for_ask(args: tuple[str, ...], message: str) -> None:
    chat = termllm_process("chat", *args, timeout=QUICK_S)
    ask = termllm_process("ask", *args, "hi", timeout=QUICK_S)
    assert (chat.code, chat.out, chat.err) == (3, "", message)
    assert (ask.code, ask.err) == (chat.code, chat.err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cid", "zzzzzz"), b"termllm: error: no conversation 'zzzzzz'\r\n"),
        (("-m", "nonexistent"), b"termllm: error: no local model matches 'nonexistent'"),
    ],
    ids=["cid", "model"],
)
def test_in_a_terminal_a_bad_argument_fails_before_the_app_opens(
    args: tuple[str, ...], message: bytes
) -> None:
    screen = in_a_terminal("chat", *args)
    assert screen.code == 3, screen.seen
    assert screen.seen.startswith(message), screen.seen
    assert screen.seen.count(b"\n") == 1, screen.seen
    assert ALT_SCREEN not in screen.seen


@pytest.mark.parametrize("args", [("chat",), ()], ids=["chat", "bare"])
def test_in_a_terminal_the_app_opens(args: tuple[str, ...], starter_model: Path) -> None:
    screen = in_a_terminal(*args, quit_once=b"Conversations")
    assert screen.code == 0, screen.seen[-2000:]
    assert ALT_SCREEN in screen.seen
    assert b"needs a terminal" not in screen.seen
