"""`python -m termllm …` in a real pseudo-terminal (100 by 30, xterm-256color), for what only a
terminal shows: escape codes, input as a terminal delivers it, refusals before the app opens."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from types import TracebackType

COLUMNS, LINES = 100, 30
CTRL_Q = b"\x11"


class Terminal:
    """The process runs in its own session; everything it writes is read and kept in `seen`
    (a full pty would block the app), and leaving the block kills it if it still runs."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.seen = bytearray()
        self._leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        size = {"TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(LINES)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "termllm", *args],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env={**os.environ, **(env or {}), **size},
            close_fds=True,
            start_new_session=True,
        )
        os.close(follower)
        self._closed = False

    def __enter__(self) -> Terminal:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self._leader)

    def write(self, data: bytes) -> None:
        os.write(self._leader, data)

    def read_until(self, wanted: bytes, timeout_s: float) -> bool:
        """Read until `wanted` is on the screen (True), the process closes it, or time is up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if wanted in self.seen:
                return True
            if not self._read(0.1) and self._closed:
                return False
        return wanted in self.seen

    def drain(self) -> None:
        """Keep what the app has written so far, without waiting for more."""
        while self._read(0):
            pass

    def wait(self, timeout_s: float) -> int | None:
        """The exit code once the process ends (reading its output meanwhile), else None."""
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.1)
        self.drain()
        return self.process.poll()

    def _read(self, timeout_s: float) -> bool:
        """One read; False when nothing came in time or the other side is closed."""
        if self._closed or not select.select([self._leader], [], [], timeout_s)[0]:
            return False
        try:
            chunk = os.read(self._leader, 65536)
        except OSError:
            # EIO: the process exited and closed its side of the terminal.
            chunk = b""
        if not chunk:
            self._closed = True
            return False
        self.seen.extend(chunk)
        return True
