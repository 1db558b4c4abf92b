"""Choices the user makes inside the app (the theme), remembered apart from their config file."""

from __future__ import annotations

from termllm.config import Config
from termllm.state import StateFile


class PreferencesService:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._state = StateFile(config.paths.state_file)

    def theme(self) -> str:
        """The theme picked last in the app, else the configured one."""
        return self._state.read().theme or self._config.settings.tui.theme

    def remember_theme(self, name: str) -> None:
        if self._state.read().theme != name:
            self._state.update(lambda state: setattr(state, "theme", name))

    def keymap(self) -> str:
        return self._config.settings.tui.keymap
