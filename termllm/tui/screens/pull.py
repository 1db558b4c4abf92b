"""Pulling a model from inside the app (F4), with the same code and reference grammar as
`termllm pull`. Esc stops a download at its next chunk; the bytes already fetched stay in the
cache's partial file, so pulling the same model again resumes where it stopped.

The bar shows only while bytes arrive: an animated bar with nothing downloading would say the
app is busy when it is not. A failed pull says why on the screen until the next attempt."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, ProgressBar, Static

from termllm.safe_text import one_line
from termllm.services.models import ModelService, PullResult
from termllm.tui.failures import failure_text
from termllm.units import format_bytes

logger = logging.getLogger(__name__)

# How often the bar moves: often enough to look live, rarely enough that the download thread
# (which waits for the screen on each update) loses no noticeable time.
UPDATES_PER_S = 10
REF_GRAMMAR = "owner/repo[:QUANT] or owner/repo/file.gguf"
# Errors can quote Hub names and server replies: bounded so that one stays a line or two.
MAX_ERROR_CHARS = 300


class PullCancelled(Exception):
    """Raised inside the download, between chunks, once the user has cancelled."""


class ForwardedProgress:
    """A TransferProgress that hands throttled updates to the screen and carries the cancel."""

    def __init__(
        self, show: Callable[[str, int, int], None], cancel: threading.Event, interval_s: float
    ) -> None:
        self._show = show
        self._cancel = cancel
        self._interval_s = interval_s
        self._label = ""
        self._total = 0
        self._done = 0
        self._shown_at = 0.0

    def begin(self, label: str, total_bytes: int, done_bytes: int) -> None:
        self._check()
        self._label, self._total, self._done = label, total_bytes, done_bytes
        self._forward()

    def advance(self, n_bytes: int) -> None:
        self._check()
        self._done += n_bytes
        if time.monotonic() - self._shown_at >= self._interval_s:
            self._forward()

    def end(self) -> None:
        self._done = self._total
        self._forward()

    def _check(self) -> None:
        if self._cancel.is_set():
            raise PullCancelled

    def _forward(self) -> None:
        self._shown_at = time.monotonic()
        try:
            self._show(self._label, self._total, self._done)
        except RuntimeError:
            # The app has closed: nobody is watching, stop the download.
            self._cancel.set()
            raise PullCancelled from None


class PullScreen(ModalScreen[PullResult | None]):
    """Dismissed with what was pulled, or None when closed or cancelled."""

    DEFAULT_CSS = """
    PullScreen {
        align: center middle;
    }
    #pull-box {
        width: 80%;
        max-width: 90;
        height: auto;
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
    ]

    def __init__(self, models: ModelService) -> None:
        super().__init__()
        self._models = models
        self._cancel: threading.Event | None = None

    @property
    def pulling(self) -> bool:
        return self._cancel is not None

    def compose(self) -> ComposeResult:
        with Vertical(id="pull-box") as box:
            box.border_title = "Pull a model"
            box.border_subtitle = "Enter pulls · Esc cancels"
            yield Input(placeholder=REF_GRAMMAR, id="pull-ref")
            # Not markup: the label and the error quote Hub file names and server replies.
            yield Static(f"A Hub reference: {REF_GRAMMAR}", id="pull-label", markup=False)
            yield Static(id="pull-error", markup=False)
            # A total from the start: without one the bar animates, even hidden.
            yield ProgressBar(total=1, id="pull-bar", show_eta=False)

    @on(Input.Submitted, "#pull-ref")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if self.pulling or not text:
            return
        self._cancel = threading.Event()
        event.input.disabled = True
        self._show_error("")
        self.query_one("#pull-label", Static).update(f"looking up {text}…")
        # Taken here: a worker thread cannot find the app through a screen already closed.
        self._pull(text, self._cancel, self.app)

    def action_cancel_pull(self) -> None:
        if self._cancel is None or self._cancel.is_set():
            # Nothing running, or a second Esc: close now; a download still running stops at
            # its next chunk on its own.
            if self._cancel is not None:
                self.app.notify(_kept_message(), title="Pull cancelled")
            self.dismiss(None)
            return
        self._cancel.set()
        self.query_one("#pull-label", Static).update("cancelling…")

    @work(thread=True, exclusive=True, group="pull", exit_on_error=False)
    def _pull(self, text: str, cancel: threading.Event, app: App[object]) -> None:
        progress = ForwardedProgress(
            partial(app.call_from_thread, self._progress), cancel, 1 / UPDATES_PER_S
        )

        def finish(callback: Callable[..., None], *args: object) -> None:
            try:
                app.call_from_thread(callback, *args)
            except RuntimeError:
                return  # The app has closed; the download has stopped or is complete.

        try:
            result = self._models.pull(text, progress)
        except PullCancelled:
            finish(self._cancelled)
        except Exception as err:
            finish(self._failed, failure_text(err, logger, f"pulling {text}"))
        else:
            finish(self._done, result)

    def _progress(self, label: str, total: int, done: int) -> None:
        if not self.is_attached or (self._cancel is not None and self._cancel.is_set()):
            return
        self.query_one("#pull-label", Static).update(
            f"{label}: {format_bytes(done)} of {format_bytes(total)}"
        )
        bar = self.query_one(ProgressBar)
        bar.update(total=total or None, progress=done)
        bar.add_class("-downloading")

    def _cancelled(self) -> None:
        if self.is_attached:
            self.app.notify(_kept_message(), title="Pull cancelled")
            self.dismiss(None)

    def _failed(self, message: str) -> None:
        self._cancel = None
        if not self.is_attached:
            # Closed with a second Esc while the download ran: a toast is all that is left.
            self.app.notify(message, title="Pull failed", severity="error")
            return
        field = self.query_one(Input)
        field.disabled = False
        field.focus()
        self.query_one("#pull-label", Static).update(f"A Hub reference: {REF_GRAMMAR}")
        self._show_error(message)
        bar = self.query_one(ProgressBar)
        bar.remove_class("-downloading")
        bar.update(total=1, progress=0)

    def _show_error(self, message: str) -> None:
        line = one_line(message, MAX_ERROR_CHARS)
        error = self.query_one("#pull-error", Static)
        error.update(f"Pull failed: {line}" if line else "")
        error.set_class(bool(line), "-shown")

    def _done(self, result: PullResult) -> None:
        self._cancel = None
        if self.is_attached:
            self.dismiss(result)
        else:
            self.app.notify(f"pulled {result.model.ref}", title="Pull finished")


def _kept_message() -> str:
    return "the part already downloaded is kept: pulling the same model again resumes it"
