"""The app's side of a turn, kept free of Textual so worker threads can run it: the model and
settings the user chose in the app for what they send next. The turn itself is the services'
(`TurnService`), the same one `ask` runs."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from termllm.app import Services
from termllm.domain import ChosenModel
from termllm.engine.base import LoadReport
from termllm.services.chat import LoadOptions
from termllm.services.conversation_settings import ConversationSettings
from termllm.services.turn import NewQuestion, Turn, TurnListener, TurnOptions, TurnResult

if TYPE_CHECKING:
    from termllm.store import ConversationRecord


class ChatSession:
    """Several workers call it (start-up load, model picker, generation); the services
    serialize loading, and the app runs one turn at a time."""

    def __init__(self, services: Services, model_ref: str | None) -> None:
        self._services = services
        self._turns = services.turns
        self.model_ref = model_ref
        """The model named on the command line; it wins until the user picks one in the app."""
        self.draft_model: str | None = None
        """The model picked for the conversation the next message starts."""
        self.draft_settings: ConversationSettings | None = None
        """Settings chosen for the conversation the next message starts (None: defaults)."""

    def choose(self, conversation_model: str | None, *, saved: bool = False) -> ChosenModel:
        """The model the user named, else the conversation's, else the configured default.
        `saved`: `conversation_model` was read from the history, where anything may be, so it
        may only name a model on disk (as a turn checks it)."""
        if self.model_ref:
            return self._services.chat.choose_model(self.model_ref)
        return self._services.chat.choose_model(conversation_model, saved=saved)

    def settings_for(self, conversation: ConversationRecord | None) -> ConversationSettings:
        """A saved conversation's settings, or those chosen for the next new one."""
        return self._turns.settings_for(conversation, self._options())

    def loaded_report(self, model: ChosenModel) -> LoadReport | None:
        """The load report of `model` if it is the one loaded (at any context size)."""
        return self._turns.slot.report_of(model)

    def ensure_loaded(
        self, model: ChosenModel, n_ctx: int | None = None
    ) -> tuple[LoadReport, bool]:
        """Load `model` with a context of `n_ctx` unless it is loaded so already; its report,
        and whether this call loaded it (its warnings are news only then)."""
        loaded, fresh = self._turns.slot.load(model, LoadOptions(n_ctx=n_ctx))
        return loaded.report, fresh

    def ask(self, turn: Turn, listener: TurnListener, cancel: threading.Event) -> TurnResult:
        """Answer `turn` with what the user chose in the app."""
        starts_conversation = isinstance(turn, NewQuestion) and turn.conversation_id is None
        try:
            return self._turns.run(turn, self._options(), listener, cancel)
        finally:
            if starts_conversation:
                # Saved with the conversation; the next new one starts from the defaults.
                self.draft_settings = None

    def _options(self) -> TurnOptions:
        return TurnOptions(
            model_ref=self.model_ref, new_model=self.draft_model, new_settings=self.draft_settings
        )
