"""Send llama.cpp and ggml log output to a file, so it never reaches the terminal.

llama-cpp-python's own remedy (`verbose=False`) dup2's fds 1 and 2 process-wide while native code
runs, which blanks a TUI drawing to fd 1 from another thread. A log callback leaves the fds alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
from pathlib import Path
from typing import BinaryIO

from termllm.errors import StorageError

# enum ggml_log_level in ggml.h. (llama-cpp-python's _logger.py maps an older order.)
_DEBUG, _CONTINUE = 1, 5


class _Sink:
    """Where native log text goes. llama.cpp keeps one logger per process, so there is one sink."""

    def __init__(self) -> None:
        # Re-entrant: a log line emitted while routing is being switched must not deadlock.
        self.lock = threading.RLock()
        self.path: Path | None = None
        self.file: BinaryIO | None = None
        # The ctypes callback object: llama.cpp holds only its raw address, so dropping this
        # reference would leave native code calling freed memory.
        self.callback: object | None = None
        self.debug = False
        self.last_level = 0

    def write(self, level: int, text: bytes | None, user_data: int | None) -> None:
        # Called from native threads. It must never raise: ctypes would print the traceback
        # to stderr, the very place this module keeps clean.
        with self.lock, contextlib.suppress(OSError, ValueError):
            if level != _CONTINUE:
                self.last_level = level
            keep = self.debug or self.last_level != _DEBUG
            if text and keep and self.file is not None:
                self.file.write(text)


_sink = _Sink()


def route_native_logs(log_file: Path, *, debug: bool = False) -> None:
    """Append llama.cpp/ggml log messages to `log_file` from now on.

    Debug messages are dropped unless `debug` is set: they are 95% of a model load's output
    (one line per tensor and graph input), about 200 KB for even a small model.

    Call this before anything loads a model or a backend, since GPU backends log as they
    initialise. Safe to call again and from any thread; a new path switches the file. If the
    file cannot be opened or written (a read-only folder, a full disk), messages are dropped
    rather than printed, and StorageError says why.
    """
    import llama_cpp

    path = log_file.absolute()
    with _sink.lock:
        _sink.debug = debug
        if _sink.callback is None:
            callback = llama_cpp.llama_log_callback(_sink.write)
            # llama_log_set also installs the callback as ggml's logger (llama-impl.cpp), so
            # backend loading and device init messages are routed too.
            llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
            _sink.callback = callback
        if _sink.path == path and _sink.file is not None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Unbuffered append: each message is one O_APPEND write, so a crash loses nothing
            # and processes sharing the log never split each other's messages.
            new_file = path.open("ab", buffering=0)
        except OSError as exc:
            _switch(None, None)
            raise StorageError(f"cannot write the native log {path}: {exc.strerror}") from exc
        try:
            new_file.write(_session_header())
        except OSError as exc:
            # Opening a file for appending succeeds on a full disk: the first write tells.
            new_file.close()
            _switch(None, None)
            raise StorageError(f"cannot write the native log {path}: {exc.strerror}") from exc
        _switch(path, new_file)


def _switch(path: Path | None, new_file: BinaryIO | None) -> None:
    old_file = _sink.file
    _sink.path, _sink.file = path, new_file
    if old_file is not None:
        old_file.close()


def _session_header() -> bytes:
    # Several processes may append to one log; this marks where each one starts.
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"--- termllm native log, pid {os.getpid()}, {stamp} ---\n".encode()
