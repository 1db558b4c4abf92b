"""A small dialog asking for one line of text (a new title, a file path): Enter accepts, Esc
cancels; an empty answer is refused with a notification and the dialog stays."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input


class TextPromptScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="cancel_dialog"),
    ]

    def __init__(self, title: str, value: str, *, empty_message: str) -> None:
        super().__init__()
        self._title = title
        self._value = value
        self._empty_message = empty_message

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as box:
            box.border_title = self._title
            box.border_subtitle = "Enter accepts · Esc cancels"
            yield Input(self._value, id="dialog-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self.notify(self._empty_message, severity="warning")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
