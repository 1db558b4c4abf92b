"""The key reference (F1 or ?), built from the app's bindings so it cannot drift from them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from termllm.tui.commands import KeyAction

HelpRow = tuple[str, str]


# Keys that are no binding of their own (so neither the keymap nor the palette knows them): the
# prompt's history rides on its cursor keys, and the list opens a conversation as it is chosen.
FIXED_ROWS: tuple[HelpRow, ...] = (
    ("↑ / ↓", "Earlier / later prompts (on the prompt's first / last line)"),
    ("enter", "Open the conversation (in the conversation list)"),
)


def help_rows(actions: Iterable[KeyAction]) -> list[HelpRow]:
    """(keys, description) for each key action, keys spelled as the user types them, then the
    keys that are no action of their own."""
    return [*((action.keys, action.description) for action in actions), *FIXED_ROWS]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,question_mark,q", "dismiss", "Close help", id="close_help"),
    ]

    def __init__(self, rows: list[HelpRow]) -> None:
        super().__init__()
        self._rows = rows

    def compose(self) -> ComposeResult:
        width = max((len(key) for key, _ in self._rows), default=0) + 2
        lines = [f"{key.ljust(width)}{description}" for key, description in self._rows]
        with VerticalScroll(id="help-box") as box:
            box.border_title = "Keys"
            box.border_subtitle = "Esc closes"
            yield Static("\n".join(lines), markup=False)
