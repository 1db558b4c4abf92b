"""The multi-line prompt: Enter sends, Shift+Enter or Ctrl+J starts a new line, Up on the first
line and Down on the last one walk through earlier prompts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import events, work
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import TextArea

from termllm.errors import TermllmError
from termllm.tui.keymap import KeyHints
from termllm.tui.prompt_history import PromptHistory

logger = logging.getLogger(__name__)


def prompt_placeholder(keys: KeyHints) -> str:
    return f"Ask anything · {keys['send']} sends · {keys['newline']} new line · {keys['help']} keys"


class PromptInput(TextArea):
    # Not priority bindings: those run as soon as the app takes the key, before the prompt has
    # inserted the characters that came just ahead of it (a burst like "Say hi⏎" sent "Say").
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "submit", "Send", id="send"),
        Binding("shift+enter,ctrl+j", "newline", "Newline", id="newline"),
    ]

    @dataclass
    class Submitted(Message):
        text: str

    def __init__(self, *, placeholder: str, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            placeholder=placeholder,
        )
        self.prompts = PromptHistory()

    async def _on_key(self, event: events.Key) -> None:
        # The prompt's own bindings (Enter, Backspace, the arrows, with the keymap applied) run
        # here, in turn with the typed characters. Left to Textual, they would run only once the
        # key had bubbled up to the app, after the keys queued behind it on the prompt. Printable
        # keys are text: TextArea's handler, which runs after this one, inserts them.
        if event.is_printable:
            return
        active = self.screen.active_bindings.get(event.key)
        if active is None or active.node is not self:
            return
        if await self.app.run_action(active.binding.action, self):
            event.stop()
            # Else TextArea's handler would also insert Enter as a newline.
            event.prevent_default()

    def action_submit(self) -> None:
        text = self.text.strip()
        if text:
            self.prompts.add(text)
            self.post_message(self.Submitted(text))
            self.clear()

    def action_newline(self) -> None:
        self.insert("\n")

    def action_cursor_up(self, select: bool = False) -> None:
        if not select and self.navigator.is_first_wrapped_line(self.cursor_location):
            recalled = self.prompts.older(self.text)
            if recalled is not None:
                self._show(recalled)
                return
        super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        if not select and self.navigator.is_last_wrapped_line(self.cursor_location):
            recalled = self.prompts.newer()
            if recalled is not None:
                self._show(recalled)
                return
        super().action_cursor_down(select)

    def _show(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    @work(thread=True, group="prompt-history", exit_on_error=False)
    def load_history(self, earlier_prompts: Callable[[], Sequence[str]]) -> None:
        """Seed the history with the prompts of earlier sessions, read off the event loop."""
        try:
            prompts = earlier_prompts()
        except TermllmError as err:
            self.app.call_from_thread(
                self.notify, f"earlier prompts are not available: {err.message}", severity="warning"
            )
            return
        except Exception:
            logger.exception("reading earlier prompts failed")
            return
        self.app.call_from_thread(self.prompts.seed, prompts)
