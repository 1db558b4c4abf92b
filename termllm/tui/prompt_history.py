"""The prompt's input history, as in a shell: Up goes to older prompts, Down back to newer ones
and finally to the draft that was being typed."""

from __future__ import annotations

from collections.abc import Iterable

HISTORY_LIMIT = 200


class PromptHistory:
    """Prompts newest first; recalled text is a copy, so editing it never changes an entry."""

    def __init__(self, limit: int = HISTORY_LIMIT) -> None:
        self._limit = limit
        self._entries: list[str] = []
        # -1: the draft is shown; otherwise the index of the entry shown.
        self._position = -1
        self._draft = ""

    @property
    def entries(self) -> list[str]:
        return list(self._entries)

    def seed(self, older: Iterable[str]) -> None:
        """Add prompts from earlier sessions behind the ones sent in this one."""
        self._entries = _distinct([*self._entries, *older])[: self._limit]

    def add(self, prompt: str) -> None:
        """A prompt was sent: it becomes the newest entry and the draft starts afresh."""
        self._entries = _distinct([prompt, *self._entries])[: self._limit]
        self._position = -1
        self._draft = ""

    def older(self, current: str) -> str | None:
        """The next older prompt (remembering `current` if it is the draft); None at the end."""
        if self._position + 1 >= len(self._entries):
            return None
        if self._position == -1:
            self._draft = current
        self._position += 1
        return self._entries[self._position]

    def newer(self) -> str | None:
        """The next newer prompt, then the draft; None when the draft is already shown."""
        if self._position == -1:
            return None
        self._position -= 1
        return self._draft if self._position == -1 else self._entries[self._position]


def _distinct(prompts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(prompts))
