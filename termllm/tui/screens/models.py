"""The model picker (F3): the models on disk with their size, quantization and context (and the
configured servers' models after them), filtered
as the user types; Enter picks the highlighted one, and the pull key (F4) goes to the pull
screen instead."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from termllm.domain import LocalModel
from termllm.services.model_summary import ModelFacts
from termllm.services.models import ModelService
from termllm.services.servers import ServerListing, ServerService
from termllm.tui.failures import failure_text
from termllm.tui.keymap import DEFAULT_KEYS
from termllm.units import format_bytes, format_count

logger = logging.getLogger(__name__)

_COLUMNS = ("QUANT", "PARAMS", "SIZE", "CONTEXT")
_WIDTHS = (8, 7, 9, 8)


@dataclass(frozen=True)
class ModelRow:
    """One model as the picker shows it."""

    ref: str
    quant: str
    parameters: str
    size: str
    context: str
    unreachable: bool = False
    """A server that could not list its models: shown, not pickable."""

    def matches(self, query: str) -> bool:
        """Every word of `query` appears in the ref or the quantization, ignoring case."""
        haystack = f"{self.ref} {self.quant}".lower()
        return all(word in haystack for word in query.lower().split())


@dataclass(frozen=True)
class PullInstead:
    """The picker's result when the user asked to pull a model rather than pick one."""


PULL_INSTEAD = PullInstead()


def model_rows(listed: Sequence[tuple[LocalModel, ModelFacts]]) -> list[ModelRow]:
    return [
        ModelRow(
            ref=model.ref,
            quant=model.quant or facts.quant or "?",
            parameters=format_count(facts.parameter_count),
            size=format_bytes(model.size_bytes),
            context="?" if facts.context_length is None else str(facts.context_length),
        )
        for model, facts in listed
    ]


def server_model_rows(listings: Sequence[ServerListing]) -> list[ModelRow]:
    """A row per model each server lists; one that did not answer says why in one row."""
    rows: list[ModelRow] = []
    for listing in listings:
        if listing.error is not None:
            rows.append(
                ModelRow(f"@{listing.name}/… unreachable: {listing.error}", "", "", "", "", True)
            )
            continue
        rows += [
            ModelRow(
                ref=model.ref,
                quant="-",
                parameters="-",
                size="server",
                context="?" if model.context_size is None else str(model.context_size),
            )
            for model in listing.models
        ]
    return rows


class ModelPicker(ModalScreen[str | PullInstead | None]):
    """Dismissed with the chosen model's ref, PULL_INSTEAD, or None."""

    DEFAULT_CSS = """
    ModelPicker {
        align: center middle;
    }
    #picker-box {
        width: 90%;
        max-width: 100;
        height: auto;
        max-height: 80%;
        padding: 0 1;
        border: round $accent;
        background: $surface;
    }
    #picker-head {
        color: $text-muted;
        text-style: bold;
        padding: 0 1;
    }
    #picker-list {
        height: auto;
        max-height: 20;
        border: none;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Close", id="close_picker"),
        # The app's own pull binding stays silent while a dialog is open; this one carries its
        # id so that a key the user remapped applies here too.
        Binding(DEFAULT_KEYS["pull_model"], "pull", "Pull a model", show=False, id="pull_model"),
        Binding("down", "move(1)", "Next", show=False, id="picker_next"),
        Binding("up", "move(-1)", "Previous", show=False, id="picker_previous"),
    ]

    def __init__(
        self,
        models: ModelService,
        current: str | None,
        *,
        pull_key: str,
        servers: ServerService | None = None,
    ) -> None:
        super().__init__()
        self._models = models
        self._servers = servers
        self._current = current
        self._pull_key = pull_key
        self._rows: list[ModelRow] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box") as box:
            box.border_title = "Models"
            box.border_subtitle = f"Enter picks · Esc closes · {self._pull_key} pulls"
            yield Input(placeholder="Type to filter", id="picker-filter")
            yield Static(self._line("MODEL", *_COLUMNS, width=self._ref_width()), id="picker-head")
            yield OptionList(id="picker-list")

    def on_mount(self) -> None:
        self.query_one(OptionList).add_option(Option("reading the models on disk…", disabled=True))
        # The app is passed in: a worker thread cannot find it through a screen already closed.
        self._list_models(self.app)

    @work(thread=True, exclusive=True, group="list-models", exit_on_error=False)
    def _list_models(self, app: App[object]) -> None:
        # Listing reads every GGUF header not yet in the facts cache: not for the event loop.
        try:
            rows = model_rows(self._models.list_with_facts())
            if self._servers is not None:
                rows += server_model_rows(self._servers.listings())
        except Exception as err:
            app.call_from_thread(self._failed, failure_text(err, logger, "listing the models"))
            return
        app.call_from_thread(self._show, rows)

    def _show(self, rows: list[ModelRow]) -> None:
        self._rows = rows
        if self.is_attached:
            self._fill(self.query_one(Input).value)

    def _failed(self, message: str) -> None:
        if self.is_attached:
            self.app.notify(message, title="Could not list the models", severity="error")
            self.dismiss(None)

    @on(Input.Changed, "#picker-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def _fill(self, query: str) -> None:
        if self._rows is None:
            return
        options = self.query_one(OptionList)
        options.clear_options()
        shown = [row for row in self._rows if row.matches(query)]
        width = self._ref_width()
        self.query_one("#picker-head", Static).update(self._line("MODEL", *_COLUMNS, width=width))
        for row in shown:
            # A radio mark rather than blank space, which the option list would trim.
            marker = "● " if row.ref == self._current else "○ "
            line = self._line(
                marker + row.ref, row.quant, row.parameters, row.size, row.context, width=width
            )
            if row.unreachable:
                options.add_option(Option(Text(row.ref, style="dim"), disabled=True))
                continue
            options.add_option(Option(line, id=row.ref))
        if not shown:
            empty = (
                "no model matches"
                if self._rows
                else f"no models on disk yet: {self._pull_key} pulls one"
            )
            options.add_option(Option(empty, disabled=True))
            return
        current = next(
            (i for i, row in enumerate(shown) if row.ref == self._current),
            next((i for i, row in enumerate(shown) if not row.unreachable), 0),
        )
        options.highlighted = current if not query.strip() else 0

    def _ref_width(self) -> int:
        longest = max((len(row.ref) for row in self._rows or ()), default=20)
        return min(max(longest + 2, 20), 60)

    @staticmethod
    def _line(first: str, *columns: str, width: int) -> Text:
        text = Text(first[:width].ljust(width), no_wrap=True, overflow="ellipsis")
        for value, column_width in zip(columns, _WIDTHS, strict=True):
            text.append(value.rjust(column_width))
        return text

    def action_pull(self) -> None:
        self.dismiss(PULL_INSTEAD)

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if step > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    @on(Input.Submitted, "#picker-filter")
    def _submitted(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            chosen = options.get_option_at_index(options.highlighted)
            if not chosen.disabled and chosen.id is not None:
                self.dismiss(chosen.id)

    @on(OptionList.OptionSelected, "#picker-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        # The app treats a selected option as a conversation from its sidebar.
        event.stop()
        if event.option.id is not None:
            self.dismiss(event.option.id)
