"""How `ask` runs its turn: the listener that renders it, and the thread that keeps Ctrl-C a
cancel. Imported only when `ask` runs: the turn brings the services with it."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from termllm.cli.answer_plain import AnswerWriter
from termllm.cli.output import kv_cache_words, note, stderr_console
from termllm.errors import ExitCode
from termllm.safe_text import text_block
from termllm.services.turn import (
    NewQuestion,
    ReadingPace,
    TurnListener,
    TurnOptions,
    TurnResult,
    TurnService,
)

if TYPE_CHECKING:
    from rich.status import Status

    from termllm.engine.base import LoadReport


class AskListener(TurnListener):
    """The turn as `ask` shows it: the answer on stdout, everything else on stderr."""

    def __init__(
        self, writer: AnswerWriter | None, verbose: bool, *, show_thinking: bool = False
    ) -> None:
        self._writer = writer
        self._verbose = verbose
        self._spinner: Status | None = None
        self._show_thinking = show_thinking
        self._thinking_shown = False
        self._pace = ReadingPace()
        self.load_report: LoadReport | None = None
        """What loading chose, once the model is loaded (for `--json`)."""

    def loading(self, model_ref: str) -> None:
        self._show_status(f"loading {model_ref}…")

    def loaded(self, model_ref: str, report: LoadReport) -> None:
        self.load_report = report
        self._end_status()
        if self._verbose and report.server is not None:
            context = f"context {report.n_ctx} tokens" if report.n_ctx else "context unknown"
            note(
                f"server {report.server} runs {model_ref} · {context}"
                f" · listed in {report.load_ms:.0f} ms"
            )
        elif self._verbose:
            placement = report.placement
            note(
                f"context {report.n_ctx} tokens · {report.threads} threads · "
                f"GPU layers {placement.blocks_on_gpu}/{placement.total_layers}"
                f" on {placement.device}"
                f" ({placement.reason})"
                f" · KV cache {kv_cache_words(report.kv_cache_type, report.flash_attention)}"
                f" · template {report.chat_template} · loaded in {report.load_ms:.0f} ms"
            )

    def warning(self, message: str) -> None:
        note(f"warning: {message}")

    def reading(self, read: int, total: int) -> None:
        # A long prompt takes seconds, a minute on a large model, before the first word.
        progress = self._pace.update(read, total)
        if progress is not None:
            self._show_status(f"reading the prompt: {progress}")
        else:
            self._end_status()

    def reasoning(self, piece: str) -> None:
        # Dimmed on the terminal's stderr: piped or redirected stdout only ever gets the answer.
        if self._show_thinking:
            if not self._thinking_shown:
                self._end_status()
                self._thinking_shown = True
            stderr_console().print(
                text_block(piece), style="dim", end="", markup=False, highlight=False
            )

    def text(self, piece: str) -> None:
        if self._thinking_shown:
            self._thinking_shown = False
            note("")
        if self._writer is not None:
            self._writer.write(piece)

    def ended(self) -> None:
        if self._thinking_shown:
            note("")

    def _show_status(self, message: str) -> None:
        """A spinner line on stderr, when it is a terminal (never in pipes or logs)."""
        if self._spinner is not None:
            self._spinner.update(message)
        elif sys.stderr.isatty():
            self._spinner = stderr_console().status(message, spinner="dots")
            self._spinner.start()

    def _end_status(self) -> None:
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None


# A process ended by these (`timeout`, `kill`, a closed terminal) keeps its partial answer,
# as Ctrl-C does, and exits with the usual 128 + the signal's number.
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Ended(Exception):
    """The turn was stopped by an ending signal; its answer so far is saved."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.exit_code = 128 + signal_number


def run_turn(
    turns: TurnService, turn: NewQuestion, options: TurnOptions, listener: AskListener
) -> TurnResult:
    """Run the turn in a worker thread, so that Ctrl-C only sets the turn's cancel flag: the
    answer then stops at the next token (or prompt batch) and is saved as cancelled, exactly
    as Esc does in the app. A second Ctrl-C ends the process at once. SIGTERM and SIGHUP
    cancel the same way, then raise Ended."""
    cancel = threading.Event()
    with _ending_signals_cancel(cancel) as received:
        result = _run_in_thread(turns, turn, options, listener, cancel)
    if received:
        raise Ended(received[0])
    return result


@contextmanager
def _ending_signals_cancel(cancel: threading.Event) -> Iterator[list[int]]:
    received: list[int] = []

    def on_signal(number: int, frame: FrameType | None) -> None:
        if received:
            _exit_now()
        received.append(number)
        cancel.set()

    previous = {number: signal.signal(number, on_signal) for number in ENDING_SIGNALS}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _run_in_thread(
    turns: TurnService,
    turn: NewQuestion,
    options: TurnOptions,
    listener: AskListener,
    cancel: threading.Event,
) -> TurnResult:
    done = threading.Event()
    outcome: list[TurnResult | BaseException] = []

    def work() -> None:
        try:
            outcome.append(turns.run(turn, options, listener, cancel))
        except BaseException as err:  # handed to the main thread, which reports it
            outcome.append(err)
        finally:
            done.set()

    threading.Thread(target=work, name="termllm-turn", daemon=True).start()
    # Waiting in short steps lets the interrupt reach this thread. (An interrupted
    # Thread.join can leave the thread looking finished while it still runs.)
    try:
        while not done.wait(0.1):
            pass
    except KeyboardInterrupt:
        cancel.set()
        try:
            while not done.wait(0.1):
                pass
        except KeyboardInterrupt:
            _exit_now()
    (ended,) = outcome
    if isinstance(ended, BaseException):
        raise ended
    return ended


def _exit_now() -> NoReturn:
    """End the process without waiting for the turn. Python's normal exit would tear the
    interpreter down under llama.cpp's running threads, which can crash it."""
    sys.stdout.flush()
    sys.stderr.write("termllm: interrupted\n")
    sys.stderr.flush()
    os._exit(ExitCode.INTERRUPTED)
