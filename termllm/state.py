"""State termllm writes for itself (never the user's config): local models used by path, and
when each model was last used.

A small JSON file, replaced atomically under a lock so two processes never interleave writes.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from termllm.errors import StorageError


@dataclass
class AppState:
    local_models: list[str] = field(default_factory=list)
    last_used: dict[str, float] = field(default_factory=dict)
    theme: str | None = None


class StateFile:
    def __init__(self, path: Path) -> None:
        self._path = path

    def read(self) -> AppState:
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return AppState()
        except (OSError, ValueError):
            # The state is a convenience (recently used models): a damaged file must not stop
            # the user; it is rebuilt on the next write.
            return AppState()
        return _from_json(raw)

    def update(self, change: Callable[[AppState], None]) -> AppState:
        with self._locked():
            state = self.read()
            change(state)
            self._write(state)
        return state

    def remember_local_model(self, path: Path) -> None:
        text = str(path)

        def add(state: AppState) -> None:
            if text not in state.local_models:
                state.local_models.append(text)

        if text not in self.read().local_models:
            self.update(add)

    def forget_local_model(self, path: Path) -> bool:
        text = str(path)
        forgotten = text in self.read().local_models

        def remove(state: AppState) -> None:
            state.local_models = [item for item in state.local_models if item != text]
            state.last_used.pop(text, None)

        if forgotten:
            self.update(remove)
        return forgotten

    def forget_usage(self, paths: Iterable[Path]) -> None:
        def remove(state: AppState) -> None:
            for path in paths:
                state.last_used.pop(str(path), None)

        self.update(remove)

    def mark_used(self, path: Path, when: float | None = None) -> None:
        stamp = time.time() if when is None else when
        self.update(lambda state: state.last_used.__setitem__(str(path), stamp))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.with_suffix(".lock").open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                yield
        except OSError as err:
            raise StorageError(f"cannot write {self._path}: {err.strerror or err}") from err

    def _write(self, state: AppState) -> None:
        temporary = self._path.with_suffix(".tmp")
        payload = {
            "local_models": state.local_models,
            "last_used": state.last_used,
            "theme": state.theme,
        }
        temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        temporary.replace(self._path)


def _from_json(raw: Any) -> AppState:
    if not isinstance(raw, dict):
        return AppState()
    local_models = raw.get("local_models", [])
    last_used = raw.get("last_used", {})
    theme = raw.get("theme")
    return AppState(
        theme=theme if isinstance(theme, str) else None,
        local_models=[item for item in local_models if isinstance(item, str)]
        if isinstance(local_models, list)
        else [],
        last_used={
            key: float(value)
            for key, value in last_used.items()
            if isinstance(key, str) and isinstance(value, int | float)
        }
        if isinstance(last_used, dict)
        else {},
    )
