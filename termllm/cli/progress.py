"""Download progress on stderr: a Rich bar on a terminal, a few plain lines otherwise."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from termllm.units import format_bytes


class RichTransferProgress:
    """A bar per file with size, speed and ETA; used as a context manager around a pull."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichTransferProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def begin(self, label: str, total_bytes: int, done_bytes: int) -> None:
        # The label is a file name from the Hub: Rich would read `[red]` in it as markup.
        description = escape(label) if not done_bytes else f"{escape(label)} (resuming)"
        self._task = self._progress.add_task(description, total=total_bytes, completed=done_bytes)

    def advance(self, n_bytes: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n_bytes)

    def end(self) -> None:
        self._task = None


class PlainTransferProgress:
    """For logs and pipes: a line when a file starts, every 10%, and when it ends."""

    def __init__(self) -> None:
        self._label = ""
        self._total = 0
        self._done = 0
        self._next_report = 0.0
        self._started = 0.0

    def __enter__(self) -> PlainTransferProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def begin(self, label: str, total_bytes: int, done_bytes: int) -> None:
        self._label, self._total, self._done = label, total_bytes, done_bytes
        self._started = time.monotonic()
        self._next_report = 0.1
        resumed = f", resuming at {format_bytes(done_bytes)}" if done_bytes else ""
        self._write(f"downloading {label} ({format_bytes(total_bytes)}{resumed})")

    def advance(self, n_bytes: int) -> None:
        self._done += n_bytes
        if not self._total or self._next_report >= 1.0:
            return
        if self._done / self._total >= self._next_report:
            self._write(f"{self._label}: {int(self._done * 100 / self._total)}%")
            while self._next_report <= self._done / self._total:
                self._next_report += 0.1

    def end(self) -> None:
        elapsed = time.monotonic() - self._started
        self._write(f"{self._label}: done ({format_bytes(self._total)} in {elapsed:.1f} s)")

    @staticmethod
    def _write(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def transfer_progress(console: Console) -> RichTransferProgress | PlainTransferProgress:
    if console.is_terminal:
        return RichTransferProgress(console)
    return PlainTransferProgress()
