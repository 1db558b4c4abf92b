"""What a pull's worker thread hands to the app's loop: throttled progress that carries the
user's cancel, and the memory question, asked in a dialog while the worker waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from textual.app import App

# A worker waiting for the user's answer looks this often whether the pull was abandoned.
_ANSWER_POLL_S = 0.1


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


class AskOnScreen:
    """The model service's Confirm, called on a pull's worker thread: `ask(message, reply)`
    runs on the app's loop and shows a dialog that calls `reply`; the worker waits for that
    answer, or stops when the pull is cancelled or the app has closed."""

    def __init__(
        self,
        app: App[object],
        cancel: threading.Event,
        ask: Callable[[str, Callable[[bool | None], None]], None],
    ) -> None:
        self._app = app
        self._cancel = cancel
        self._ask = ask
        self.declined = False
        """Whether the user answered no (the service then refuses the pull)."""

    def __call__(self, message: str) -> bool:
        answered = threading.Event()
        answers: list[bool] = []

        def reply(confirmed: bool | None) -> None:
            answers.append(bool(confirmed))
            answered.set()

        try:
            self._app.call_from_thread(self._ask, message, reply)
        except RuntimeError:
            raise PullCancelled from None
        while not answered.wait(_ANSWER_POLL_S):
            if self._cancel.is_set() or not self._app.is_running:
                raise PullCancelled
        self.declined = not answers[0]
        return answers[0]


def deliver(app: App[object], callback: Callable[..., None], *args: object) -> None:
    """Hand a worker's outcome to the app's loop; nobody is left to tell once it has closed."""
    try:
        app.call_from_thread(callback, *args)
    except RuntimeError:
        return
