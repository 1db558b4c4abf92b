"""Files termllm writes for itself that nothing depends on: state.json (when each model was
last used, the local files used by path), the saved model state of conversations and termllm's
own log. Failing to write one (a read-only home, a full disk) costs a convenience, never what
the user asked for: it is noted, a warning once per file in a process for the front end to show
when it next can, and the command goes on without it.

llama.cpp's own log is the engine's: it warns in the load report, as other load warnings."""

from __future__ import annotations

import threading
from pathlib import Path

from termllm.safe_text import one_line


class SideWrites:
    """Safe to share between threads: the model state is written from a thread of its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._noted: set[Path] = set()
        self._untold: list[str] = []

    def failed(self, path: Path, warning: str) -> None:
        """Writing `path` failed, as `warning` says; it is told unless `path` already was."""
        with self._lock:
            if path in self._noted:
                return
            self._noted.add(path)
            # The message quotes a path from the environment and an OS error: one line.
            self._untold.append(one_line(warning))

    def take(self) -> list[str]:
        """The warnings not told yet; each is handed out once."""
        with self._lock:
            untold, self._untold = self._untold, []
        return untold
