"""One chat turn from the app's point of view, kept free of Textual so worker threads can run it:
choose the model, save the question, load, fit, stream, save the answer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
    """The loaded model and the conversation being continued; safe to call from one worker."""

    def __init__(self, services: Services, model_ref: str | None) -> None:
        self._services = services
        self.model_ref = model_ref
        self._loaded: tuple[str, LoadedModel] | None = None
        # The start-up load and a first send may both ask for a model at once.
        self._load_lock = threading.Lock()

    def choose(self, conversation_model: str | None) -> LocalModel:
        """The model the user named, else the conversation's, else the configured default."""
        return self._services.chat.choose_model(self.model_ref or conversation_model)

    def is_loaded(self, model: LocalModel) -> bool:
        loaded = self._loaded
        return loaded is not None and loaded[0] == model.ref

    def ensure_loaded(self, model: LocalModel) -> LoadedModel:
        with self._load_lock:
            if self._loaded is not None and self._loaded[0] == model.ref:
                return self._loaded[1]
            if self._loaded is not None:
                self._loaded[1].close()
                self._loaded = None
            loaded = self._services.chat.load(model, LoadOptions())
            self._loaded = (model.ref, loaded)
            return loaded

    def ask(
        self,
        turn: Turn,
        cancel: threading.Event,
        on_saved: Callable[[str], None],
        on_model: Callable[[str, LoadReport | None], None],
        on_text: Callable[[str], None],
    ) -> Completion:
        """Answer `turn`: a new question, the last question again, or an edited question. A new
        or edited question is saved first, so that a failed load or a crash still keeps it.

        `on_saved` gets the conversation id once the question is in the store; `on_model` gets
        the model's ref before a load (with no report) and again once it is ready."""
        history, chat = self._services.history, self._services.chat
        params = chat.default_params()
        if isinstance(turn, NewQuestion):
            resumed = history.resume(turn.conversation_id) if turn.conversation_id else None
            model = self.choose(resumed.conversation.model if resumed else None)
            system_prompt = (
                resumed.conversation.system_prompt if resumed else None
            ) or chat.default_system_prompt()
            exchange = history.save_question(resumed, model.ref, system_prompt, params, turn.text)
            messages = [*(resumed.messages if resumed else ()), Message(Role.USER, turn.text)]
        else:
            pending = (
                history.regenerate(turn.conversation_id)
                if isinstance(turn, AnswerAgain)
                else history.save_edit(turn.conversation_id, turn.question_id, turn.text)
            )
            model = self.choose(pending.conversation.model)
            system_prompt = pending.conversation.system_prompt or chat.default_system_prompt()
            exchange, messages = pending.exchange, list(pending.messages)
        on_saved(exchange.conversation_id)
        if not self.is_loaded(model):
            on_model(model.ref, None)
        loaded = self.ensure_loaded(model)
        on_model(model.ref, loaded.report)
        if system_prompt:
            messages.insert(0, Message(Role.SYSTEM, system_prompt))
        fitted = chat.fit(loaded, messages, params)
        conversation_id = exchange.conversation_id
        completion = self._stream(loaded, conversation_id, fitted.messages, params, cancel, on_text)
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
