"""The conversation's settings (F5): system prompt, sampling parameters, thinking and context
size.

Every field is checked as it changes, its reason shown beside it, and all of them again on save:
while one is wrong nothing is saved.
"""

from __future__ import annotations

from contextlib import suppress
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from termllm.errors import UsageError
from termllm.services.conversation_settings import (
    ConversationSettings,
    Value,
    build_settings,
    parse_value,
)
from termllm.setting_fields import SETTING_FIELDS, ChoiceField, SettingField

_FIELD_BY_INPUT_ID = {
    f"setting-{item.name}": item for item in SETTING_FIELDS if isinstance(item, SettingField)
}


def shown_value(value: Value) -> str:
    return "" if value is None else str(value)


class SettingsScreen(ModalScreen[ConversationSettings | None]):
    """Dismissed with the checked settings, or None when closed without saving."""

    DEFAULT_CSS = """
    SettingsScreen {
        align: center middle;
    }
    #settings-box {
        width: 80%;
        max-width: 90;
        height: auto;
        max-height: 90%;
        padding: 0 1;
        border: round $accent;
        background: $surface;
    }
    #setting-system_prompt {
        height: 5;
        margin-bottom: 1;
    }
    .setting-row {
        height: 1;
    }
    .setting-row .setting-label {
        width: 16;
    }
    /* One line per field, so the whole form fits a small terminal. */
    .setting-row Input {
        width: 24;
        height: 1;
        border: none;
        padding: 0 1;
        background: $boost;
    }
    .setting-row Input:focus {
        background: $accent 30%;
    }
    .setting-row Input.-invalid {
        background: $error 30%;
    }
    /* A choice is picked from a list, so it cannot be wrong: compact, like the inputs. */
    .setting-row Select {
        width: 24;
    }
    .setting-row Select.-textual-compact > SelectCurrent {
        background: $boost;
        padding: 0 1;
    }
    .setting-row Select:focus > SelectCurrent {
        background: $accent 30%;
    }
    .setting-error {
        width: 1fr;
        padding: 0 0 0 1;
        color: $error;
    }
    #settings-buttons {
        height: auto;
        margin-top: 1;
        align: right middle;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Close without saving", id="close_settings"),
        Binding("ctrl+s", "save", "Save", id="save_settings"),
    ]

    def __init__(self, current: ConversationSettings, title: str) -> None:
        super().__init__()
        self._current = current
        self._title = title

    def compose(self) -> ComposeResult:
        values = self._current.values()
        # Not focusable itself: the screen's first focus then lands on the first field, so keys
        # typed as it opens are kept, and a focused field scrolls itself into view anyway.
        with VerticalScroll(id="settings-box", can_focus=False) as box:
            box.border_title = f"Settings · {self._title}"
            box.border_subtitle = "Ctrl+S saves · Esc closes"
            yield Label("System prompt (empty: none)", classes="setting-label")
            yield TextArea(
                self._current.system_prompt,
                id="setting-system_prompt",
                soft_wrap=True,
                show_line_numbers=False,
                tab_behavior="focus",
            )
            for item in SETTING_FIELDS:
                with Horizontal(classes="setting-row"):
                    yield Label(item.label, classes="setting-label")
                    yield self._field(item, values[item.name])
                    yield Static("", id=f"error-{item.name}", classes="setting-error")
            with Horizontal(id="settings-buttons"):
                yield Button("Save", id="settings-save", variant="primary")
                yield Button("Cancel", id="settings-cancel")

    @staticmethod
    def _field(item: SettingField | ChoiceField, value: Value) -> Widget:
        if isinstance(item, ChoiceField):
            return Select(
                [(choice, choice) for choice in item.choices],
                value=shown_value(value),
                allow_blank=False,
                compact=True,
                id=f"setting-{item.name}",
            )
        return Input(
            shown_value(value),
            placeholder=item.empty_means,
            id=f"setting-{item.name}",
            select_on_focus=False,
        )

    def _typed(self, item: SettingField | ChoiceField) -> str:
        """What the field of `item` holds, as text."""
        if isinstance(item, ChoiceField):
            return str(self.query_one(f"#setting-{item.name}", Select).value)
        return self.query_one(f"#setting-{item.name}", Input).value

    @on(Input.Changed)
    def _field_changed(self, event: Input.Changed) -> None:
        item = _FIELD_BY_INPUT_ID.get(event.input.id or "")
        if item is not None:
            # Shown beside the field is all a change needs; saving reports it again.
            with suppress(UsageError):
                self._check(item, event.value)

    @on(Input.Submitted)
    @on(Button.Pressed, "#settings-save")
    def _save_pressed(self) -> None:
        self.action_save()

    def _check(self, item: SettingField | ChoiceField, text: str) -> Value:
        """The value `text` gives `item`; its reason is shown beside the field (or cleared)
        before any UsageError is raised."""
        field = self.query_one(f"#setting-{item.name}")
        error = self.query_one(f"#error-{item.name}", Static)
        try:
            value = parse_value(item, text)
        except UsageError as err:
            error.update(err.message.removeprefix(f"{item.label}: "))
            field.add_class("-invalid")
            raise
        error.update("")
        field.remove_class("-invalid")
        return value

    def action_save(self) -> None:
        values: dict[str, Value] = {}
        problems: list[tuple[str, str]] = []
        for item in SETTING_FIELDS:
            try:
                values[item.name] = self._check(item, self._typed(item))
            except UsageError as err:
                problems.append((item.name, err.message))
        if problems:
            first, message = problems[0]
            self.query_one(f"#setting-{first}").focus()
            count = f" ({len(problems)} fields)" if len(problems) > 1 else ""
            self.notify(message + count, title="Settings not saved", severity="error")
            return
        prompt = self.query_one("#setting-system_prompt", TextArea).text
        self.dismiss(build_settings(prompt, values))

    @on(Button.Pressed, "#settings-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)
