"""The one model a process keeps loaded, shared by every turn and by the app's own loads (at
start-up, from the model picker)."""

from __future__ import annotations

import threading
from pathlib import Path

from termllm.domain import ChosenModel, LocalModel
from termllm.engine.base import LoadedModel, LoadReport
from termllm.services.chat import ChatService, LoadOptions

# A loaded model is known by its file (a server's by its reference) and the options it was
# loaded with.
_Key = tuple[Path | str, LoadOptions]


def _identity(model: ChosenModel) -> Path | str:
    return model.path if isinstance(model, LocalModel) else model.ref


class ModelSlot:
    """Loading is serialized: the app's start-up load and a first send may ask at once. The
    model loaded before stays until the new one is ready, so a failed load leaves it usable."""

    def __init__(self, chat: ChatService) -> None:
        self._chat = chat
        self._loaded: tuple[_Key, LoadedModel] | None = None
        self._lock = threading.Lock()

    def holds(self, model: ChosenModel, options: LoadOptions) -> bool:
        """Whether `model` is loaded with exactly these options."""
        loaded = self._loaded
        return loaded is not None and loaded[0] == (_identity(model), options)

    def report_of(self, model: ChosenModel) -> LoadReport | None:
        """The load report of `model` if it is the one loaded (with any options)."""
        loaded = self._loaded
        if loaded is None or loaded[0][0] != _identity(model):
            return None
        return loaded[1].report

    def load(self, model: ChosenModel, options: LoadOptions) -> tuple[LoadedModel, bool]:
        """`model` loaded with these options, and whether this call loaded it (False: it was
        already)."""
        with self._lock:
            key = (_identity(model), options)
            if self._loaded is not None and self._loaded[0] == key:
                return self._loaded[1], False
            loaded = self._chat.load(model, options)
            previous, self._loaded = self._loaded, (key, loaded)
            if previous is not None:
                previous[1].close()
            return loaded, True
