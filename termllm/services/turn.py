"""One chat turn, the same for `ask` and the chat app: resume the conversation, apply its
settings and this turn's overrides, choose the model, save the question, load, fit, stream, save
the answer and keep the model state.

It knows no UI. What happens is told to a TurnListener, which each front end renders its own
way. The question (with any piped text in it) is saved before anything that can fail; a turn
that fails after that still saves an answer with finish reason `error` and the reason, so the
conversation shows what went wrong and can be answered again later.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from termllm.domain import (
    ChosenModel,
    Completion,
    FinishReason,
    GenParams,
    Message,
    Role,
    TextChunk,
    Think,
    Timings,
    Usage,
)
from termllm.engine.thinking import think_variables
from termllm.errors import TermllmError
from termllm.safe_text import argument_text
from termllm.services.branches import Exchange, PendingAnswer
from termllm.services.chat import ChatService, LoadOptions
from termllm.services.conversation_settings import (
    ConversationSettings,
    default_settings,
    settings_of,
)
from termllm.services.history import Continuation, HistoryService
from termllm.services.model_slot import ModelSlot
from termllm.services.prefix_cache import LONG_PROMPT_TOKENS

if TYPE_CHECKING:
    from termllm.engine.base import LoadedModel, LoadReport
    from termllm.store import ConversationRecord


@dataclass(frozen=True)
class Reading:
    """How far reading a long prompt got, and how fast it goes."""

    read: int
    total: int
    tokens_per_s: float = 0.0
    """0 until the first batch is read."""

    def left(self) -> str:
        """ "4 s left", "1 min 5 s left"; empty while the speed is not known."""
        if self.tokens_per_s <= 0:
            return ""
        seconds = math.ceil((self.total - self.read) / self.tokens_per_s)
        return f"{seconds} s left" if seconds < 60 else f"{seconds // 60} min {seconds % 60} s left"

    def __str__(self) -> str:
        """ "1024/2048 tokens · 290 tok/s · 4 s left"."""
        line = f"{self.read}/{self.total} tokens"
        if self.tokens_per_s > 0:
            line += f" · {self.tokens_per_s:.0f} tok/s · {self.left()}"
        return line


class ReadingPace:
    """What front ends show while a turn's prompt is read, from the `reading` reports of one
    turn. A prompt with fewer than LONG_PROMPT_TOKENS tokens to read is read in a moment and
    shows nothing."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._first: tuple[float, int] | None = None
        """When the first report came, and how much of the prompt was cached then."""
        self._long = False

    def update(self, read: int, total: int) -> Reading | None:
        """What to show after this report; None when there is nothing to: a short prompt, or
        the whole prompt read."""
        now = self._clock()
        if self._first is None:
            self._first = (now, read)
            self._long = total - read >= LONG_PROMPT_TOKENS
        if not self._long or read >= total:
            return None
        began, cached = self._first
        if read > cached and now > began:
            return Reading(read, total, (read - cached) / (now - began))
        return Reading(read, total)


@dataclass(frozen=True)
class NewQuestion:
    """A question typed or piped in."""

    text: str
    conversation_id: str | None = None
    """The conversation it continues (an id or a unique prefix of one); None: a new one."""
    latest: bool = False
    """Continue the most recent conversation instead (`ask -c`)."""


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


@dataclass(frozen=True)
class TurnOptions:
    """What the front end chose for this turn, over the conversation's own settings."""

    model_ref: str | None = None
    """A model named for this turn (`-m`); it wins over the conversation's."""
    new_model: str | None = None
    """The model a new conversation starts with when none is named (None: the default)."""
    new_settings: ConversationSettings | None = None
    """The settings a new conversation starts with (None: the configured defaults)."""
    system_prompt: str | None = None
    """A system prompt for this turn ("" for none); None: the conversation's."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Sampling settings for this turn, by GenParams field name."""
    load: LoadOptions = field(default_factory=LoadOptions)
    """Load settings for this turn; a context size here wins over the conversation's."""
    save: bool = True
    """False (`--no-save`): nothing is written to the history, and no state is kept."""


class TurnListener:
    """What a front end hears of a turn, in this order: `saved` (unless nothing is saved),
    `loading` (only when the model must be loaded), `loaded`, any `warning`, `reading` as the
    prompt is read, `reasoning` for each piece of a thinking model's reasoning and `text` for
    each piece of the answer (as the model writes them: reasoning first), `ended` after the last
    one, before the answer is saved. Every call comes from the thread running the turn; a
    listener overrides what it shows."""

    def saved(self, conversation_id: str) -> None:
        """The question is in the history, in this conversation."""

    def loading(self, model_ref: str) -> None:
        """The model is being loaded."""

    def loaded(self, model_ref: str, report: LoadReport) -> None:
        """The model is ready."""

    def warning(self, message: str) -> None:
        """Something the user should know: a context reduced, a template replaced, a prompt cut."""

    def reading(self, read: int, total: int) -> None:
        """The model has read `read` of the prompt's `total` tokens (those it had cached
        included): first when it starts, then after each batch of a long prompt, and last
        when the whole prompt is read."""

    def reasoning(self, piece: str) -> None:
        """The next piece of the reasoning before the answer."""

    def text(self, piece: str) -> None:
        """The next piece of the answer."""

    def ended(self) -> None:
        """The model wrote its last piece."""


@dataclass(frozen=True)
class TurnResult:
    completion: Completion
    model_ref: str
    conversation_id: str | None
    """None when nothing was saved."""
    answer_id: str | None


class TurnService:
    def __init__(self, chat: ChatService, history: HistoryService, slot: ModelSlot) -> None:
        self._chat = chat
        self._history = history
        self.slot = slot
        # Said once per model and setting in a process: the app would repeat it every turn.
        self._think_notes_said: set[tuple[str, Think]] = set()

    def settings_for(
        self, conversation: ConversationRecord | None, options: TurnOptions
    ) -> ConversationSettings:
        """The settings a turn uses before its own overrides: the conversation's, or those a
        new one starts with."""
        if conversation is None:
            return options.new_settings or default_settings(self._chat)
        return settings_of(self._chat, conversation)

    def run(
        self,
        turn: Turn,
        options: TurnOptions,
        listener: TurnListener,
        cancel: threading.Event,
    ) -> TurnResult:
        """Answer `turn`. A TermllmError before the question is saved (an unknown
        conversation, nothing to answer again) is raised as it is; one after it is saved as
        the answer's reason first, then raised."""
        conversation, continued, pending = self._resume(turn)
        settings = self._settings(conversation, options)
        wanted = options.model_ref or (conversation.model if conversation else options.new_model)
        # A conversation's own model was read from the history, where anything may be.
        saved = conversation is not None and not options.model_ref
        model: ChosenModel | None = None
        choice_error: TermllmError | None = None
        try:
            model = self._chat.choose_model(wanted, saved=saved)
        except TermllmError as err:
            choice_error = err
        # A reference that names no model is kept as given, in a form the history can hold.
        model_ref = model.ref if model is not None else argument_text(wanted) if wanted else wanted
        exchange, messages = self._save_question(
            turn, continued, pending, settings, options, model_ref
        )
        if exchange is not None:
            listener.saved(exchange.conversation_id)
        # A --no-save continuation still starts from the conversation's saved state.
        state_of = exchange.conversation_id if exchange else None
        if state_of is None and conversation is not None:
            state_of = conversation.id
        try:
            if choice_error is not None:
                raise choice_error
            assert model is not None
            loaded, load_ms = self._load(model, settings, options, listener)
            self._tell_side_writes(listener)
            self._note_think(model.ref, loaded.report, settings.params.think, listener)
            if settings.system_prompt:
                messages = (Message(Role.SYSTEM, settings.system_prompt), *messages)
            fitted = self._chat.fit(loaded, messages, settings.params)
            for warning in fitted.warnings:
                listener.warning(warning)
            completion, refused = self._stream(
                loaded, state_of, fitted.messages, settings, listener, cancel
            )
        except Exception as err:
            if exchange is not None:
                self._history.save_answer(exchange, _failure(err), model_ref)
            raise
        completion = replace(completion, timings=replace(completion.timings, load_ms=load_ms))
        if completion.ended_thinking and completion.finish_reason is FinishReason.LENGTH:
            listener.warning(_out_while_thinking(completion, settings.params))
        answer_id = None
        if exchange is not None:
            answer_id = self._history.save_answer(exchange, completion, model.ref).id
            if completion.finish_reason is not FinishReason.ERROR:
                # Continuing this conversation, here or in another process, starts from here.
                answer = Message(
                    Role.ASSISTANT, completion.content, reasoning=completion.reasoning or None
                )
                self._chat.keep_state(
                    loaded,
                    exchange.conversation_id,
                    (*fitted.messages, answer),
                    settings.params.think,
                )
        if refused is not None:
            raise refused
        conversation_id = exchange.conversation_id if exchange else None
        return TurnResult(completion, model.ref, conversation_id, answer_id)

    def settle(self, listener: TurnListener) -> None:
        """Wait for what the last turn left to write in the background (the model state), then
        warn of files termllm could not write for itself. `ask` calls it before it ends; the
        app hears of such files in its next turn."""
        self._chat.flush_states()
        self._tell_side_writes(listener)

    def _tell_side_writes(self, listener: TurnListener) -> None:
        for warning in self._chat.side_writes.take():
            listener.warning(warning)

    def _resume(
        self, turn: Turn
    ) -> tuple[ConversationRecord | None, Continuation | None, PendingAnswer | None]:
        """The turn's conversation: as it is for a new question, with the question to answer
        again for a regenerate; an edit only finds it (the edited question is saved later)."""
        history = self._history
        if isinstance(turn, NewQuestion):
            if turn.conversation_id is None and not turn.latest:
                return None, None, None
            continued = history.resume(turn.conversation_id)
            return continued.conversation, continued, None
        if isinstance(turn, AnswerAgain):
            pending = history.regenerate(turn.conversation_id)
            return pending.conversation, None, pending
        return history.find(turn.conversation_id), None, None

    def _settings(
        self, conversation: ConversationRecord | None, options: TurnOptions
    ) -> ConversationSettings:
        settings = self.settings_for(conversation, options)
        return ConversationSettings(
            system_prompt=(
                settings.system_prompt if options.system_prompt is None else options.system_prompt
            ),
            params=replace(settings.params, **options.params),
            n_ctx=options.load.n_ctx if options.load.n_ctx is not None else settings.n_ctx,
        )

    def _save_question(
        self,
        turn: Turn,
        continued: Continuation | None,
        pending: PendingAnswer | None,
        settings: ConversationSettings,
        options: TurnOptions,
        model_ref: str | None,
    ) -> tuple[Exchange | None, tuple[Message, ...]]:
        """Commit the question before anything can fail (None when nothing is saved), with the
        messages of the branch it ends, the question last."""
        history = self._history
        if pending is not None:
            return pending.exchange, pending.messages
        if isinstance(turn, EditedQuestion):
            edited = history.save_edit(turn.conversation_id, turn.question_id, turn.text)
            return edited.exchange, edited.messages
        assert isinstance(turn, NewQuestion)
        messages = (*(continued.messages if continued else ()), Message(Role.USER, turn.text))
        if not options.save:
            return None, messages
        exchange = history.save_question(
            continued,
            model_ref,
            settings.system_prompt,
            settings.params,
            turn.text,
            settings.n_ctx,
        )
        return exchange, messages

    def _load(
        self,
        model: ChosenModel,
        settings: ConversationSettings,
        options: TurnOptions,
        listener: TurnListener,
    ) -> tuple[LoadedModel, float]:
        """The model ready to answer, and the time this turn spent loading it (0: it was)."""
        load_options = replace(options.load, n_ctx=settings.n_ctx)
        if not self.slot.holds(model, load_options):
            listener.loading(model.ref)
        loaded, fresh = self.slot.load(model, load_options)
        report = loaded.report
        listener.loaded(model.ref, report)
        if not fresh:
            return loaded, 0.0
        for warning in report.warnings:
            listener.warning(warning)
        return loaded, report.load_ms

    def _stream(
        self,
        loaded: LoadedModel,
        state_of: str | None,
        messages: tuple[Message, ...],
        settings: ConversationSettings,
        listener: TurnListener,
        cancel: threading.Event,
    ) -> tuple[Completion, Exception | None]:
        """The one place that runs the model, for every kind of turn and both front ends. If
        the listener cannot take a piece (a closed pipe), the answer stops there as cancelled
        and its error comes back, to be raised once the answer is saved."""
        completion: Completion | None = None
        refused: Exception | None = None
        stream = self._chat.stream(loaded, state_of, messages, settings.params, cancel)
        for chunk in stream:
            # The engine stops between tokens once `cancel` is set and still ends with the
            # Completion holding the partial text, so the loop runs to the end.
            if isinstance(chunk, Completion):
                completion = chunk
                continue
            if cancel.is_set():
                continue
            try:
                if isinstance(chunk, TextChunk):
                    if chunk.reasoning:
                        listener.reasoning(chunk.text)
                    else:
                        listener.text(chunk.text)
                else:
                    listener.reading(chunk.read, chunk.total)
            except Exception as err:
                refused = err
                cancel.set()
        if refused is None:
            listener.ended()
        assert completion is not None, "an engine stream always ends with a Completion"
        return completion, refused

    def _note_think(
        self, model_ref: str, report: LoadReport, think: Think, listener: TurnListener
    ) -> None:
        _, note = think_variables(report.think_controls, think)
        if note is not None and (model_ref, think) not in self._think_notes_said:
            self._think_notes_said.add((model_ref, think))
            listener.warning(note)


def _out_while_thinking(completion: Completion, params: GenParams) -> str:
    used = completion.usage.completion_tokens
    limit = (
        "the token limit"
        if params.max_tokens is not None and used is not None and used >= params.max_tokens
        else "the context"
    )
    return (
        f"no answer: {limit} ran out while the model was still thinking"
        f" ({completion.usage.reasoning_tokens} tokens of reasoning); raise --max-tokens or"
        " cap the reasoning with --think-budget"
    )


def _failure(err: Exception) -> Completion:
    message = err.message if isinstance(err, TermllmError) else f"{type(err).__name__}: {err}"
    timings = Timings(load_ms=0.0, ttft_ms=0.0, prompt_tokens_per_s=0.0, decode_tokens_per_s=0.0)
    return Completion("", FinishReason.ERROR, Usage(0, 0), timings, message)
