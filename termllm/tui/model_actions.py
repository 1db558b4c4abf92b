"""The app's model and settings actions: the picker (F3), pulling (F4), the conversation's
settings (F5), and the status bar's model as the user moves between conversations.

A conversation keeps its own model and settings in the store; until its first message is sent,
a new conversation keeps them in the session and the first message saves them with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from textual.app import App
from textual.screen import ModalScreen

from termllm.engine.base import LoadReport
from termllm.errors import TermllmError
from termllm.safe_text import one_line
from termllm.services.conversation_settings import ConversationSettings
from termllm.services.models import PullResult
from termllm.tui.chat_state import ChatState
from termllm.tui.failures import failure_text
from termllm.tui.screens.models import ModelPicker, PullInstead
from termllm.tui.screens.pull import PullScreen
from termllm.tui.screens.settings import SettingsScreen
from termllm.tui.widgets.status import StatusBar, placement_text
from termllm.units import format_bytes

logger = logging.getLogger(__name__)


class ModelActions:
    def __init__(self, app: App[None], chat: ChatState) -> None:
        self._app = app
        self._chat = chat

    def _main_screen_active(self) -> bool:
        # The keys stay bound while a dialog is open; a second dialog on top would only confuse.
        return not isinstance(self._app.screen, ModalScreen)

    # The picker

    def open_picker(self) -> None:
        app = self._app
        chat = self._chat
        if not self._main_screen_active():
            return
        if chat.refuse_while_streaming():
            return
        current = app.query_one(StatusBar).info.model
        picker = ModelPicker(
            chat.services.models,
            current,
            pull_key=chat.key_hints["pull_model"],
            servers=chat.services.servers,
        )
        app.push_screen(picker, callback=self._picked)

    def _picked(self, ref: str | PullInstead | None) -> None:
        """The conversation continues with `ref`, and new conversations start with it. Saved at
        once, so that a message sent during the load uses it too; a failed load puts the
        previous choice back."""
        app, session = self._app, self._chat.session
        chat = self._chat
        if isinstance(ref, PullInstead):
            # The picker has left the screen stack by now, so the pull screen is not refused.
            self.open_pull()
            return
        if ref is None:
            return
        conversation_id = chat.conversation_id
        previous: str | None = None
        try:
            if conversation_id is not None:
                previous = chat.services.history.find(conversation_id).model
                chat.services.history.set_model(conversation_id, ref)
        except TermllmError as err:
            app.notify(err.message, title="Could not switch the model", severity="error")
            return
        undo = partial(
            self._restore, conversation_id, previous, session.model_ref, session.draft_model
        )
        # The -m model of the command line gives way to a choice made in the app.
        session.model_ref, session.draft_model = None, ref
        app.run_worker(
            partial(self._load, ref, conversation_id, undo),
            thread=True,
            exclusive=True,
            group="load",
            exit_on_error=False,
        )

    def _restore(
        self,
        conversation_id: str | None,
        model: str | None,
        model_ref: str | None,
        draft_model: str | None,
    ) -> None:
        session = self._chat.session
        session.model_ref, session.draft_model = model_ref, draft_model
        if conversation_id is not None and model is not None:
            try:
                self._chat.services.history.set_model(conversation_id, model)
            except TermllmError as err:
                logger.warning("could not restore the model of %s: %s", conversation_id, err)

    def _load(self, ref: str, conversation_id: str | None, undo: Callable[[], None]) -> None:
        app, session = self._app, self._chat.session
        chat = self._chat
        try:
            model = session.choose(ref)
            conversation = chat.services.history.find(conversation_id) if conversation_id else None
            n_ctx = session.settings_for(conversation).n_ctx
            app.call_from_thread(self.show_model, model.ref, None)
            report, fresh = session.ensure_loaded(model, n_ctx)
        except Exception as err:
            message = failure_text(err, logger, f"loading {ref}")
            app.call_from_thread(self._load_failed, message, undo)
            return
        app.call_from_thread(self.show_model, model.ref, report)
        if fresh:
            app.call_from_thread(self.warn, report.warnings)

    def _load_failed(self, message: str, undo: Callable[[], None]) -> None:
        undo()
        self._app.notify(
            f"{message}; the previous model stays in use",
            title="Could not load the model",
            severity="error",
        )
        self._describe_in_worker(self._chat.conversation_id)

    def show_model(self, ref: str, report: LoadReport | None, loading: bool = True) -> None:
        """The status bar's model: loading (no report), ready, or not loaded yet."""
        status = self._app.query_one(StatusBar)
        if report is not None:
            status.change(
                model=ref,
                loading=False,
                placement=placement_text(report),
                n_ctx=report.n_ctx,
                remote=report.server is not None,
            )
        else:
            status.change(model=ref, loading=loading, placement="", n_ctx=0, remote=False)

    def warn(self, warnings: tuple[str, ...]) -> None:
        """What loading a model had to say (a context reduced, a template replaced)."""
        for warning in warnings:
            self._app.notify(warning, severity="warning", timeout=10)

    # The status bar while moving between conversations

    def conversation_shown(self, conversation_id: str | None) -> None:
        """Show the model the shown conversation answers with; it loads when a message is
        sent. A new conversation starts from the default settings."""
        if conversation_id is None:
            self._chat.session.draft_settings = None
        self._describe_in_worker(conversation_id)

    def _describe_in_worker(self, conversation_id: str | None) -> None:
        self._app.run_worker(
            partial(self._describe, conversation_id),
            thread=True,
            exclusive=True,
            group="describe-model",
            exit_on_error=False,
        )

    def _describe(self, conversation_id: str | None) -> None:
        # Resolving a reference lists the models on disk: too slow for the event loop.
        app, session = self._app, self._chat.session
        chat = self._chat
        wanted: str | None = session.draft_model
        try:
            if conversation_id is not None:
                wanted = chat.services.history.find(conversation_id).model
            model = session.choose(wanted, saved=conversation_id is not None)
        except TermllmError:
            # A missing model is reported when a message needs it, not on every visit.
            if wanted is not None:
                app.call_from_thread(self.show_model, one_line(wanted, 80), None, False)
            return
        report = session.loaded_report(model)
        app.call_from_thread(self.show_model, model.ref, report, False)

    # Pulling

    def open_pull(self) -> None:
        if self._main_screen_active():
            self._app.push_screen(PullScreen(self._chat.services.models), callback=self._pulled)

    def _pulled(self, result: PullResult | None) -> None:
        if result is None:
            return
        model = result.model
        verb = "pulled" if result.downloaded else "already present:"
        self._app.notify(
            f"{verb} {model.ref} ({format_bytes(model.size_bytes)});"
            f" {self._chat.key_hints['model_picker']} picks it",
            title="Pull finished",
        )

    # Settings

    def open_settings(self) -> None:
        app = self._app
        chat = self._chat
        if not self._main_screen_active():
            return
        conversation_id = chat.conversation_id
        try:
            conversation = chat.services.history.find(conversation_id) if conversation_id else None
        except TermllmError as err:
            app.notify(err.message, severity="error")
            return
        current = chat.session.settings_for(conversation)
        title = conversation.title if conversation else "new conversation"
        app.push_screen(
            SettingsScreen(current, title), callback=partial(self._settings_saved, conversation_id)
        )

    def _settings_saved(
        self, conversation_id: str | None, settings: ConversationSettings | None
    ) -> None:
        app = self._app
        chat = self._chat
        if settings is None:
            return
        if conversation_id is None:
            chat.session.draft_settings = settings
            app.notify("saved for this conversation's first message", title="Settings")
            return
        try:
            chat.services.history.save_settings(conversation_id, settings)
        except TermllmError as err:
            app.notify(err.message, title="Settings not saved", severity="error")
            return
        app.notify("saved with the conversation", title="Settings")
