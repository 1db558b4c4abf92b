"""One chat turn from the app's point of view, kept free of Textual so worker threads can run it:
choose the model, save the question, load, fit, stream, save the answer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from termllm.app import Services
from termllm.domain import (
    Completion,
    FinishReason,
    GenParams,
    LocalModel,
    Message,
    Role,
    TextChunk,
)
from termllm.engine.base import LoadedModel, LoadReport
from termllm.services.chat import LoadOptions
from termllm.services.conversation_settings import ConversationSettings, settings_of

if TYPE_CHECKING:
    from termllm.store import ConversationRecord

# A loaded model is known by its ref and the context size it was asked for (None: configured).
LoadKey = tuple[str, int | None]


@dataclass(frozen=True)
class NewQuestion:
    """A question typed in the prompt, continuing the conversation (None: a new one)."""

    conversation_id: str | None
    text: str


@dataclass(frozen=True)
class AnswerAgain:
    """Regenerate: the last question of the current branch, answered once more."""

    conversation_id: str


@dataclass(frozen=True)
class EditedQuestion:
    """A question sent again with new text, as a sibling of the one it replaces."""

    conversation_id: str
    question_id: str
    text: str


Turn = NewQuestion | AnswerAgain | EditedQuestion


class ChatSession:
    """The loaded model and how to answer a turn. Several workers call it (start-up load, model
    picker, generation); loading is serialized by a lock, and one turn generates at a time."""

    def __init__(self, services: Services, model_ref: str | None) -> None:
        self._services = services
        self.model_ref = model_ref
        """The model named on the command line; it wins until the user picks one in the app."""
        self.draft_model: str | None = None
        """The model picked for the conversation the next message starts."""
        self.draft_settings: ConversationSettings | None = None
        """Settings chosen for the conversation the next message starts (None: defaults)."""
        self._loaded: tuple[LoadKey, LoadedModel] | None = None
        # The start-up load and a first send may both ask for a model at once.
        self._load_lock = threading.Lock()

    def choose(self, conversation_model: str | None) -> LocalModel:
        """The model the user named, else the conversation's, else the configured default."""
        return self._services.chat.choose_model(self.model_ref or conversation_model)

    def settings_for(self, conversation: ConversationRecord | None) -> ConversationSettings:
        """A saved conversation's settings, or those chosen for the next new one."""
        if conversation is None and self.draft_settings is not None:
            return self.draft_settings
        return settings_of(self._services.chat, conversation)

    def is_loaded(self, model: LocalModel, n_ctx: int | None = None) -> bool:
        loaded = self._loaded
        return loaded is not None and loaded[0] == (model.ref, n_ctx)

    def loaded_report(self, model: LocalModel) -> LoadReport | None:
        """The load report of `model` if it is the one loaded (at any context size)."""
        loaded = self._loaded
        return loaded[1].report if loaded is not None and loaded[0][0] == model.ref else None

    def ensure_loaded(self, model: LocalModel, n_ctx: int | None = None) -> LoadedModel:
        """Load `model` with a context of `n_ctx` unless it is loaded so already. The model
        loaded before stays until the new one is ready, so a failed load leaves it usable."""
        with self._load_lock:
            key = (model.ref, n_ctx)
            if self._loaded is not None and self._loaded[0] == key:
                return self._loaded[1]
            loaded = self._services.chat.load(model, LoadOptions(n_ctx=n_ctx))
            previous, self._loaded = self._loaded, (key, loaded)
            if previous is not None:
                previous[1].close()
            return loaded

    def ask(
        self,
        turn: Turn,
        cancel: threading.Event,
        on_saved: Callable[[str], None],
        on_model: Callable[[str, LoadReport | None], None],
        on_text: Callable[[str], None],
        on_end: Callable[[], None],
    ) -> Completion:
        """Answer `turn`: a new question, the last question again, or an edited question. A new
        or edited question is saved first, so that a failed load or a crash still keeps it.

        `on_saved` gets the conversation id once the question is in the store; `on_model` gets
        the model's ref before a load (with no report) and again once it is ready; `on_text`
        gets each piece of the answer, and `on_end` is called after the last one, before the
        answer is saved."""
        history, chat = self._services.history, self._services.chat
        if isinstance(turn, NewQuestion):
            resumed = history.resume(turn.conversation_id) if turn.conversation_id else None
            conversation = resumed.conversation if resumed else None
            settings = self.settings_for(conversation)
            model = self.choose(conversation.model if conversation else self.draft_model)
            exchange = history.save_question(
                resumed,
                model.ref,
                settings.system_prompt,
                settings.params,
                turn.text,
                n_ctx=settings.n_ctx,
            )
            if resumed is None:
                # Now saved with the conversation; the next new one starts from the defaults.
                self.draft_settings = None
            messages = [*(resumed.messages if resumed else ()), Message(Role.USER, turn.text)]
        else:
            pending = (
                history.regenerate(turn.conversation_id)
                if isinstance(turn, AnswerAgain)
                else history.save_edit(turn.conversation_id, turn.question_id, turn.text)
            )
            settings = self.settings_for(pending.conversation)
            model = self.choose(pending.conversation.model)
            exchange, messages = pending.exchange, list(pending.messages)
        params, system_prompt = settings.params, settings.system_prompt
        on_saved(exchange.conversation_id)
        if not self.is_loaded(model, settings.n_ctx):
            on_model(model.ref, None)
        loaded = self.ensure_loaded(model, settings.n_ctx)
        on_model(model.ref, loaded.report)
        if system_prompt:
            messages.insert(0, Message(Role.SYSTEM, system_prompt))
        fitted = chat.fit(loaded, messages, params)
        conversation_id = exchange.conversation_id
        completion = self._stream(loaded, conversation_id, fitted.messages, params, cancel, on_text)
        on_end()
        # A regenerated answer is saved under the same question: a sibling of the old ones.
        history.save_answer(exchange, completion, model.ref)
        if completion.finish_reason is not FinishReason.ERROR:
            # Switching back to this conversation, or continuing it later, starts from here.
            chat.keep_state(loaded, conversation_id)
        return completion

    def _stream(
        self,
        loaded: LoadedModel,
        conversation_id: str,
        messages: Sequence[Message],
        params: GenParams,
        cancel: threading.Event,
        on_text: Callable[[str], None],
    ) -> Completion:
        """The one place that runs the model, for every kind of turn; it starts from the
        conversation's saved state when that spares re-reading it."""
        completion: Completion | None = None
        stream = self._services.chat.stream(loaded, conversation_id, messages, params, cancel)
        for chunk in stream:
            # The engine stops between tokens once `cancel` is set and still ends with the
            # Completion holding the partial text, so the loop runs to the end.
            if isinstance(chunk, TextChunk):
                if not cancel.is_set():
                    on_text(chunk.text)
            else:
                completion = chunk
        assert completion is not None, "an engine stream always ends with a Completion"
        return completion
