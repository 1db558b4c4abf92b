"""The key reference (F1 or ?), built from the app's bindings so it cannot drift from them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import Static

HelpRow = tuple[str, str]


def help_rows(bindings: Iterable[Binding]) -> list[HelpRow]:
    """(keys, description) for each described binding, keys spelled as the user types them."""
    return [
        (" / ".join(_key_name(key) for key in binding.key.split(",")), binding.description)
        for binding in bindings
        if binding.description
    ]


def _key_name(key: str) -> str:
    # format_key would show Enter as a symbol; the help screen spells it out.
    return key.strip() if key.strip() == "enter" else format_key(key.strip())


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
