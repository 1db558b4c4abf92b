"""What the app's actions (conversation_actions, model_actions) know of the chat app beside
Textual's own App API: the state they read, and the messages that tell the app what they did.
Kept apart from the app so that the actions need not import the app that builds them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from textual.message import Message

if TYPE_CHECKING:
    from termllm.app import Services
    from termllm.tui.keymap import KeyHints
    from termllm.tui.session import ChatSession
    from termllm.tui.streaming import LiveAnswer


class ChatState(Protocol):
    @property
    def services(self) -> Services: ...

    @property
    def session(self) -> ChatSession: ...

    @property
    def conversation_id(self) -> str | None:
        """The conversation on screen (None: a new one)."""
        ...

    @property
    def live(self) -> LiveAnswer | None:
        """The answer streaming now, in whichever conversation."""
        ...

    @property
    def key_hints(self) -> KeyHints:
        """The keys hints name, with the user's keymap applied."""
        ...

    def refuse_while_streaming(self) -> bool:
        """True (after saying so) while an answer streams."""
        ...


class ConversationsChanged(Message):
    """A conversation was renamed: the list shows it anew."""


class ConversationDeleted(Message):
    def __init__(self, conversation_id: str) -> None:
        super().__init__()
        self.conversation_id = conversation_id
