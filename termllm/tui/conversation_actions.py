"""Rename, delete and export a conversation: the dialogs, then the history service.

Each acts on the conversation highlighted in the list while the list has the focus, else on the
one on screen."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App
from textual.worker import WorkerCancelled, WorkerFailed

from termllm.errors import TermllmError
from termllm.services.export_markdown import default_export_path, write_export
from termllm.tui.chat_state import ChatState, ConversationDeleted, ConversationsChanged
from termllm.tui.failures import failure_text
from termllm.tui.screens.confirm import ConfirmScreen
from termllm.tui.screens.text_prompt import TextPromptScreen
from termllm.tui.widgets.sidebar import ConversationList

if TYPE_CHECKING:
    from termllm.store import ConversationRecord

logger = logging.getLogger(__name__)


def target(app: App[None], chat: ChatState, verb: str) -> ConversationRecord | None:
    """The conversation to act on, or None (with a notification saying why)."""
    conversations = app.query_one(ConversationList)
    chosen = conversations.highlighted_option if conversations.has_focus else None
    conversation_id = chosen.id if chosen is not None else chat.conversation_id
    if conversation_id is None:
        app.notify(f"nothing to {verb} yet: this conversation has no messages", severity="warning")
        return None
    try:
        return chat.services.history.find(conversation_id)
    except TermllmError as err:
        app.notify(err.message, severity="error")
        return None


def rename(app: App[None], chat: ChatState) -> None:
    conversation = target(app, chat, "rename")
    if conversation is None:
        return

    def save(title: str | None) -> None:
        if title is None or title == conversation.title:
            return
        try:
            renamed = chat.services.history.rename(conversation.id, title)
        except TermllmError as err:
            app.notify(err.message, severity="error")
            return
        app.post_message(ConversationsChanged())
        app.notify(f"renamed to “{renamed.title}”")

    app.push_screen(
        TextPromptScreen("Rename", conversation.title, empty_message="a title cannot be empty"),
        save,
    )


def delete(app: App[None], chat: ChatState) -> None:
    conversation = target(app, chat, "delete")
    if conversation is None:
        return

    def confirmed(yes: bool | None) -> None:
        if yes:
            app.run_worker(_delete(app, chat, conversation), group="delete", exit_on_error=False)

    messages = f"{conversation.message_count} message(s)"
    app.push_screen(
        ConfirmScreen(
            "Delete conversation",
            f"Delete “{conversation.title}” and its {messages}? This cannot be undone.",
            "Delete",
        ),
        confirmed,
    )


async def _delete(app: App[None], chat: ChatState, conversation: ConversationRecord) -> None:
    live = chat.live
    if live is not None and live.conversation_id == conversation.id:
        # The answer must be saved (as cancelled) before its conversation goes, or the worker
        # would write into a conversation that no longer exists.
        live.cancel.set()
        for worker in [w for w in app.workers if w.group == "generate" and not w.is_finished]:
            with contextlib.suppress(WorkerCancelled, WorkerFailed):
                await worker.wait()
    try:
        chat.services.history.delete([conversation.id])
    except Exception as err:
        message = failure_text(err, logger, "deleting a conversation")
        app.notify(message, title="Not deleted", severity="error")
        return
    app.post_message(ConversationDeleted(conversation.id))
    app.notify(f"deleted “{conversation.title}”")


def export(app: App[None], chat: ChatState) -> None:
    conversation = target(app, chat, "export")
    if conversation is None:
        return

    def chosen(answer: str | None) -> None:
        if answer is None:
            return
        path = Path(answer).expanduser()
        if path.is_dir():
            path = default_export_path(conversation.title, path)
        if not path.exists():
            _write(app, chat, conversation.id, path, overwrite=False)
            return

        def replace(yes: bool | None) -> None:
            if yes:
                _write(app, chat, conversation.id, path, overwrite=True)

        app.push_screen(
            ConfirmScreen("File exists", f"{path} already exists. Replace it?", "Replace"),
            replace,
        )

    default = default_export_path(conversation.title, Path.cwd())
    app.push_screen(
        TextPromptScreen("Export to Markdown", str(default), empty_message="a file name is needed"),
        chosen,
    )


def _write(
    app: App[None], chat: ChatState, conversation_id: str, path: Path, *, overwrite: bool
) -> None:
    def write() -> None:
        try:
            text = chat.services.history.export_markdown([conversation_id])
            write_export(path, text, overwrite=overwrite)
        except Exception as err:
            message = failure_text(err, logger, "exporting a conversation")
            app.call_from_thread(app.notify, message, title="Not exported", severity="error")
            return
        app.call_from_thread(app.notify, f"exported to {path.absolute()}")

    app.run_worker(write, thread=True, group="export", exit_on_error=False)
