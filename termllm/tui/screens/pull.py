"""Pulling a model from inside the app (F4), with the same code and reference grammar as
`termllm pull`. Words search the Hub; a repo (typed, or chosen among the results) lists its
files with where each would run here, the recommended one highlighted and preselected; Enter
pulls the highlighted file, and a reference with a quant or a file name pulls at once. A file
that will not fit in memory is asked about first, as a terminal asks; one that will not fit on
the disk is refused with the sizes.

Esc stops a download at its next chunk; the bytes already fetched stay in the cache's partial
file, so pulling the same model again resumes where it stopped. The bar shows only while bytes
arrive: an animated bar with nothing downloading would say the app is busy when it is not. A
failed pull or lookup says why on the screen until the next attempt."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, ProgressBar, Static

from termllm.domain import HubRef, NameRef
from termllm.errors import TermllmError
from termllm.safe_text import one_line
from termllm.services.models import ModelService, PullResult
from termllm.tui.failures import failure_text
from termllm.tui.pull_threads import AskOnScreen, ForwardedProgress, PullCancelled, deliver
from termllm.tui.screens.confirm import ConfirmScreen
from termllm.tui.widgets.pull_tables import PullTable, machine_text
from termllm.units import format_bytes

if TYPE_CHECKING:
    from termllm.hub.search import HubModelResult
    from termllm.services.repo_fit import RepoFit

logger = logging.getLogger(__name__)

# How often the bar moves: often enough to look live, rarely enough that the download thread
# (which waits for the screen on each update) loses no noticeable time.
UPDATES_PER_S = 10
REF_GRAMMAR = "owner/repo[:QUANT] or owner/repo/file.gguf"
IDLE_LABEL = f"Words search the Hub for GGUF models; or name one: {REF_GRAMMAR}"
# The `termllm search` default: a screenful, most downloaded first.
SEARCH_LIMIT = 20
# Errors can quote Hub names and server replies: bounded so that one stays a line or two.
MAX_ERROR_CHARS = 300


class PullScreen(ModalScreen[PullResult | None]):
    """Dismissed with what was pulled, or None when closed or cancelled."""

    DEFAULT_CSS = """
    PullScreen {
        align: center middle;
    }
    #pull-box {
        width: 96%;
        max-width: 120;
        height: auto;
        max-height: 90%;
        padding: 0 1;
        border: round $accent;
        background: $surface;
    }
    #pull-label {
        margin: 1 0;
        color: $text-muted;
    }
    #pull-error {
        display: none;
        margin: 0 0 1 0;
        color: $error;
    }
    #pull-error.-shown {
        display: block;
    }
    #pull-bar {
        display: none;
    }
    #pull-bar.-downloading {
        display: block;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel_pull", "Cancel", id="cancel_pull"),
        Binding("down", "move(1)", "Next", show=False, id="pull_next"),
        Binding("up", "move(-1)", "Previous", show=False, id="pull_previous"),
    ]

    def __init__(self, models: ModelService) -> None:
        super().__init__()
        self._models = models
        self._cancel: threading.Event | None = None
        # The field's text the table was made for: Enter on that same text acts on the
        # highlighted row; on any other text it looks the text up.
        self._shown_for: str | None = None
        self._query = ""
        # The search a repo's files were reached from, which Esc goes back to.
        self._back: tuple[str, tuple[HubModelResult, ...]] | None = None
        # Each lookup's number: a result that arrives after a newer lookup began is dropped.
        self._lookup = 0

    @property
    def pulling(self) -> bool:
        return self._cancel is not None

    def compose(self) -> ComposeResult:
        with Vertical(id="pull-box") as box:
            box.border_title = "Pull a model"
            box.border_subtitle = self._hint()
            yield Input(placeholder=f"search words, or {REF_GRAMMAR}", id="pull-ref")
            # Not markup: the label and the error quote Hub names and server replies.
            yield Static(IDLE_LABEL, id="pull-label", markup=False)
            yield Static(id="pull-error", markup=False)
            yield PullTable(id="pull-table")
            # A total from the start: without one the bar animates, even hidden.
            yield ProgressBar(total=1, id="pull-bar", show_eta=False)

    # What Enter does

    @on(Input.Submitted, "#pull-ref")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if self.pulling or not text:
            return
        chosen = self.query_one(PullTable).chosen()
        if text == self._shown_for and chosen is not None:
            self._choose(chosen)
        else:
            self._look_up(text)

    @on(OptionList.OptionSelected, "#pull-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        # The app treats a selected option as a conversation from its sidebar.
        event.stop()
        if not self.pulling and event.option.id is not None:
            self._choose(event.option.id)

    def _choose(self, option_id: str) -> None:
        table = self.query_one(PullTable)
        if table.results is not None:
            self._back = (self._query, table.results)
            self.query_one(Input).value = option_id
            self._look_up(option_id, keep_back=True)
        else:
            self._start_pull(option_id)

    def _look_up(self, text: str, *, keep_back: bool = False) -> None:
        """Words search; a repo lists its files; anything else is pulled as `pull` would."""
        if not keep_back:
            self._back = None
        self._show_hint()
        try:
            ref = self._models.parse(text)
        except TermllmError as err:
            self._show_error(err.message, prefix="")
            return
        self._lookup += 1
        self._show_error("")
        # The app is passed in: a worker thread cannot find it through a screen already closed.
        if isinstance(ref, NameRef):
            self._label(f"searching the Hub for {text}…")
            self._search(text, self._lookup, self.app)
        elif isinstance(ref, HubRef) and not ref.filename and not ref.quant:
            self._label(f"reading the files of {ref.repo_id} and judging them…")
            self._list_files(text, ref, self._lookup, self.app)
        else:
            self._start_pull(text)

    # Looking up

    @work(thread=True, exclusive=True, group="pull-lookup", exit_on_error=False)
    def _search(self, query: str, lookup: int, app: App[object]) -> None:
        try:
            results = self._models.search(query, SEARCH_LIMIT)
        except Exception as err:
            message = failure_text(err, logger, f"searching for {query}")
            deliver(app, self._lookup_failed, lookup, f"Search failed: {message}")
        else:
            deliver(app, self._show_results, lookup, query, results)

    @work(thread=True, exclusive=True, group="pull-lookup", exit_on_error=False)
    def _list_files(self, text: str, ref: HubRef, lookup: int, app: App[object]) -> None:
        try:
            plan = self._models.fit_repo(text)
        except Exception as err:
            message = failure_text(err, logger, f"listing {text}")
            deliver(app, self._lookup_failed, lookup, f"Could not list the files: {message}")
        else:
            deliver(app, self._show_files, lookup, text, ref, plan)

    def _lookup_failed(self, lookup: int, message: str) -> None:
        if self.is_attached and lookup == self._lookup:
            self._label(IDLE_LABEL)
            self._show_error(message, prefix="")

    def _show_results(self, lookup: int, query: str, results: tuple[HubModelResult, ...]) -> None:
        if not self.is_attached or lookup != self._lookup:
            return
        self._query, self._shown_for = query, query
        shown = one_line(query, max_chars=80)
        count = "1 GGUF repo matches" if len(results) == 1 else f"{len(results)} GGUF repos match"
        self._label(
            f"{count} {shown}, most downloaded first: Enter lists the highlighted one's files"
            if results
            else f"no GGUF models on the Hub match {shown}"
        )
        self.query_one(PullTable).show_results(results)

    def _show_files(self, lookup: int, text: str, ref: HubRef, plan: RepoFit) -> None:
        if not self.is_attached or lookup != self._lookup:
            return
        self._shown_for = text
        best = plan.recommended
        self._label(
            f"{one_line(plan.repo_id)}: Enter pulls the highlighted file"
            + (f" (★ {one_line(best.label, max_chars=80)}, recommended)" if best else "")
        )
        self.query_one(PullTable).show_files(ref, plan)

    def action_move(self, step: int) -> None:
        self.query_one(PullTable).move(step)

    # Pulling

    def _start_pull(self, text: str) -> None:
        self._cancel = threading.Event()
        self._show_hint()
        self.query_one(Input).disabled = True
        self.query_one(PullTable).disabled = True
        self._show_error("")
        self._label(f"looking up {text}…")
        self._pull(text, self._cancel, self.app)

    def action_cancel_pull(self) -> None:
        if self._cancel is None and self._back is not None:
            # A repo's files (or their lookup) reached from a search: back to its results.
            query, results = self._back
            self._back = None
            self._show_hint()
            self._lookup += 1
            self.query_one(Input).value = query
            self._show_error("")
            self._show_results(self._lookup, query, results)
            return
        if self._cancel is None or self._cancel.is_set():
            # Nothing running, or a second Esc: close now; a download still running stops at
            # its next chunk on its own.
            if self._cancel is not None:
                self.app.notify(_kept_message(), title="Pull cancelled")
            self.dismiss(None)
            return
        self._cancel.set()
        self._label("cancelling…")

    @work(thread=True, exclusive=True, group="pull", exit_on_error=False)
    def _pull(self, text: str, cancel: threading.Event, app: App[object]) -> None:
        progress = ForwardedProgress(
            partial(app.call_from_thread, self._progress), cancel, 1 / UPDATES_PER_S
        )
        ask = AskOnScreen(app, cancel, self._ask)
        try:
            result = self._models.pull(text, progress, ask)
        except PullCancelled:
            deliver(app, self._cancelled)
        except Exception as err:
            if ask.declined:
                deliver(app, self._declined)
            else:
                deliver(app, self._failed, failure_text(err, logger, f"pulling {text}"))
        else:
            deliver(app, self._done, result)

    def _ask(self, message: str, reply: Callable[[bool | None], None]) -> None:
        """The memory question, with what this machine has when the table counted it."""
        lines = [one_line(message, MAX_ERROR_CHARS)]
        plan = self.query_one(PullTable).plan
        if plan is not None:
            lines.append(f"This machine: {machine_text(plan)}.")
        lines.append("Pull it anyway?")
        dialog = ConfirmScreen("Not enough memory", "\n\n".join(lines), "Pull anyway")
        self.app.push_screen(dialog, callback=reply)

    def _progress(self, label: str, total: int, done: int) -> None:
        if not self.is_attached or (self._cancel is not None and self._cancel.is_set()):
            return
        self._label(f"{label}: {format_bytes(done)} of {format_bytes(total)}")
        bar = self.query_one(ProgressBar)
        bar.update(total=total or None, progress=done)
        bar.add_class("-downloading")

    def _cancelled(self) -> None:
        if self.is_attached:
            self.app.notify(_kept_message(), title="Pull cancelled")
            self.dismiss(None)

    def _declined(self) -> None:
        self._ready_again()
        if self.is_attached:
            self._label("not pulled: nothing downloaded")

    def _failed(self, message: str) -> None:
        if not self.is_attached:
            # Closed with a second Esc while the download ran: a toast is all that is left.
            self._cancel = None
            self.app.notify(message, title="Pull failed", severity="error")
            return
        self._ready_again()
        self._label(IDLE_LABEL)
        self._show_error(message)

    def _ready_again(self) -> None:
        """After a pull that did not happen: the field and the table take input again."""
        self._cancel = None
        if not self.is_attached:
            return
        self._show_hint()
        self.query_one(PullTable).disabled = False
        field = self.query_one(Input)
        field.disabled = False
        field.focus()
        bar = self.query_one(ProgressBar)
        bar.remove_class("-downloading")
        bar.update(total=1, progress=0)

    def _hint(self) -> str:
        if self.pulling:
            return "Esc stops the download (what arrived is kept)"
        escape = "goes back to the results" if self._back is not None else "closes"
        return f"Enter searches, lists or pulls · ↑↓ choose · Esc {escape}"

    def _show_hint(self) -> None:
        self.query_one("#pull-box").border_subtitle = self._hint()

    def _label(self, text: str) -> None:
        self.query_one("#pull-label", Static).update(text)

    def _show_error(self, message: str, prefix: str = "Pull failed: ") -> None:
        line = one_line(message, MAX_ERROR_CHARS)
        error = self.query_one("#pull-error", Static)
        error.update(f"{prefix}{line}" if line else "")
        error.set_class(bool(line), "-shown")

    def _done(self, result: PullResult) -> None:
        self._cancel = None
        if self.is_attached:
            self.dismiss(result)
        else:
            self.app.notify(f"pulled {result.model.ref}", title="Pull finished")


def _kept_message() -> str:
    return "the part already downloaded is kept: pulling the same model again resumes it"
