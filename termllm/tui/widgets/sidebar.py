"""The conversation list: newest first; choosing one asks the app to show it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual.widgets import OptionList
from textual.widgets.option_list import Option, OptionDoesNotExist

if TYPE_CHECKING:
    from termllm.store import ConversationRecord


BUSY_MARK = "● "


class ConversationList(OptionList):
    def show(
        self,
        conversations: Sequence[ConversationRecord],
        current: str | None,
        busy: str | None = None,
    ) -> None:
        """`busy`: the conversation whose answer is streaming, marked in the list."""
        self.clear_options()
        self.add_options(
            Option(BUSY_MARK + c.title if c.id == busy else c.title, id=c.id) for c in conversations
        )
        self.select(current)

    def select(self, conversation_id: str | None) -> None:
        """Highlight a conversation without announcing it as chosen."""
        if conversation_id is None:
            self.highlighted = None
            return
        try:
            self.highlighted = self.get_option_index(conversation_id)
        except OptionDoesNotExist:
            self.highlighted = None
