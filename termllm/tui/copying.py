"""Copying a message, or one of its code blocks: the selected message (Alt+Up/Alt+Down choose
one), else the last answer. The text goes to the system clipboard where a command for it is
reachable, and to the terminal's clipboard (OSC 52) in any case; the notice says which, since a
terminal may ignore OSC 52 without a word."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from textual.app import App
from textual.widget import Widget

from termllm.tui.clipboard import clipboard_command, copy_with
from termllm.tui.markdown_blocks import code_blocks
from termllm.tui.widgets.answer import AnswerView
from termllm.tui.widgets.messages import ConversationView, UserMessage


class Copier:
    def __init__(self, app: App[None]) -> None:
        self._app = app
        # The block the code key copied last, by message: pressed again, it copies the one
        # before it.
        self._last_block: tuple[Widget, int] | None = None

    def copy_message(self) -> None:
        message = self._target()
        if message is None:
            self._app.notify("no answer to copy yet", severity="warning")
            return
        what = "the question" if isinstance(message, UserMessage) else "the answer"
        text = _text_of(message)
        self._copy(text, f"{what} ({_lines(text)})")

    def copy_code_block(self) -> None:
        message = self._target()
        blocks = code_blocks(_text_of(message)) if message is not None else []
        if message is None or not blocks:
            what = "selected message" if self._selected() is not None else "last answer"
            self._app.notify(f"the {what} has no code block", severity="warning")
            return
        index = len(blocks) - 1
        if self._last_block is not None and self._last_block[0] is message:
            index = (self._last_block[1] - 1) % len(blocks)
        self._last_block = (message, index)
        language, code = blocks[index]
        which = f" {index + 1}/{len(blocks)}" if len(blocks) > 1 else ""
        kind = f"{language} code block" if language else "code block"
        self._copy(code, f"the {kind}{which} ({_lines(code)})")

    def _selected(self) -> Widget | None:
        return self._app.query_one(ConversationView).selected_message

    def _target(self) -> Widget | None:
        selected = self._selected()
        if selected is not None:
            return selected
        answers = [
            a for a in self._app.query_one(ConversationView).query_children(AnswerView) if a.source
        ]
        return answers[-1] if answers else None

    def _copy(self, text: str, what: str) -> None:
        app = self._app
        # OSC 52 reaches the user's own terminal over SSH too, where no desktop command can.
        app.copy_to_clipboard(text)
        command = clipboard_command(os.environ)
        if command is None:
            app.notify(f"sent {what} to the terminal's clipboard (OSC 52)")
            return
        app.run_worker(
            partial(self._copy_with, command, text, what),
            thread=True,
            group="clipboard",
            exit_on_error=False,
        )

    def _copy_with(self, command: list[str], text: str, what: str) -> None:
        if copy_with(command, text):
            self._app.call_from_thread(self._app.notify, f"copied {what} to the clipboard")
        else:
            self._app.call_from_thread(
                self._app.notify,
                f"sent {what} to the terminal's clipboard (OSC 52): {Path(command[0]).name} failed",
                severity="warning",
            )


def _text_of(message: Widget) -> str:
    if isinstance(message, UserMessage):
        return message.text
    if isinstance(message, AnswerView):
        return message.source
    return ""


def _lines(text: str) -> str:
    count = len(text.splitlines()) or 1
    return f"{count} line{'s' if count != 1 else ''}"
