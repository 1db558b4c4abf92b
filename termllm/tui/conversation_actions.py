"""Rename, delete and export a conversation: the dialogs, then the history service.

Each acts on the conversation highlighted in the list while the list has the focus, else on the
one on screen."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from textual.worker import WorkerCancelled, WorkerFailed

from termllm.errors import TermllmError
from termllm.services.export_markdown import default_export_path, write_export
from termllm.tui.failures import failure_text
from termllm.tui.screens.confirm import ConfirmScreen
from termllm.tui.screens.text_prompt import TextPromptScreen
from termllm.tui.widgets.sidebar import ConversationList

if TYPE_CHECKING:
    from termllm.store import ConversationRecord
    from termllm.tui.app import ChatApp

logger = logging.getLogger(__name__)


def target(app: ChatApp, verb: str) -> ConversationRecord | None:
    """The conversation to act on, or None (with a notification saying why)."""
    conversations = app.query_one(ConversationList)
    chosen = conversations.highlighted_option if conversations.has_focus else None
    conversation_id = chosen.id if chosen is not None else app.conversation_id
    if conversation_id is None:
        app.notify(f"nothing to {verb} yet: this conversation has no messages", severity="warning")
        return None
    try:
        return app.services.history.find(conversation_id)
    except TermllmError as err:
        app.notify(err.message, severity="error")
        return None


def rename(app: ChatApp) -> None:
    conversation = target(app, "rename")
    if conversation is None:
        return

    def save(title: str | None) -> None:
        if title is None or title == conversation.title:
            return
        try:
            renamed = app.services.history.rename(conversation.id, title)
        except TermllmError as err:
            app.notify(err.message, severity="error")
            return
        app.refresh_sidebar()
        app.notify(f"renamed to “{renamed.title}”")

    app.push_screen(
        TextPromptScreen("Rename", conversation.title, empty_message="a title cannot be empty"),
        save,
    )


def delete(app: ChatApp) -> None:
    conversation = target(app, "delete")
    if conversation is None:
        return

    def confirmed(yes: bool | None) -> None:
        if yes:
            app.run_worker(_delete(app, conversation), group="delete", exit_on_error=False)

    messages = f"{conversation.message_count} message(s)"
    app.push_screen(
        ConfirmScreen(
            "Delete conversation",
            f"Delete “{conversation.title}” and its {messages}? This cannot be undone.",
            "Delete",
        ),
        confirmed,
    )


async def _delete(app: ChatApp, conversation: ConversationRecord) -> None:
    on_screen = conversation.id == app.conversation_id
    live = app.live
    if live is not None and live.conversation_id == conversation.id:
        # The answer must be saved (as cancelled) before its conversation goes, or the worker
        # would write into a conversation that no longer exists.
        app.action_cancel()
        for worker in [w for w in app.workers if w.group == "generate" and not w.is_finished]:
            with contextlib.suppress(WorkerCancelled, WorkerFailed):
                await worker.wait()
    try:
        app.services.history.delete([conversation.id])
    except Exception as err:
        message = failure_text(err, logger, "deleting a conversation")
        app.notify(message, title="Not deleted", severity="error")
        return
    if on_screen:
        await app.show_conversation(None)
    app.refresh_sidebar()
    app.notify(f"deleted “{conversation.title}”")


def export(app: ChatApp) -> None:
    conversation = target(app, "export")
    if conversation is None:
        return

    def chosen(answer: str | None) -> None:
        if answer is None:
            return
        path = Path(answer).expanduser()
        if path.is_dir():
            path = default_export_path(conversation.title, path)
        if not path.exists():
            _write(app, conversation.id, path, overwrite=False)
            return

        def replace(yes: bool | None) -> None:
            if yes:
                _write(app, conversation.id, path, overwrite=True)

        app.push_screen(
            ConfirmScreen("File exists", f"{path} already exists. Replace it?", "Replace"),
            replace,
        )

    default = default_export_path(conversation.title, Path.cwd())
    app.push_screen(
        TextPromptScreen("Export to Markdown", str(default), empty_message="a file name is needed"),
        chosen,
    )


def _write(app: ChatApp, conversation_id: str, path: Path, *, overwrite: bool) -> None:
    def write() -> None:
        try:
            text = app.services.history.export_markdown([conversation_id])
            write_export(path, text, overwrite=overwrite)
        except Exception as err:
            message = failure_text(err, logger, "exporting a conversation")
            app.call_from_thread(app.notify, message, title="Not exported", severity="error")
            return
        app.call_from_thread(app.notify, f"exported to {path.absolute()}")

    app.run_worker(write, thread=True, group="export", exit_on_error=False)
