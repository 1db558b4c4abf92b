"""Copying the last answer, or its last code block, to the clipboard (OSC 52 through Textual)."""

from __future__ import annotations

from textual.app import App

from termllm.tui.widgets.answer import AnswerView
from termllm.tui.widgets.messages import ConversationView


def last_answer(app: App[None]) -> AnswerView | None:
    """The last answer shown that has any text."""
    answers = [a for a in app.query_one(ConversationView).query_children(AnswerView) if a.source]
    return answers[-1] if answers else None


def copy_answer(app: App[None]) -> None:
    answer = last_answer(app)
    if answer is None:
        app.notify("no answer to copy yet", severity="warning")
        return
    app.copy_to_clipboard(answer.source)
    app.notify(f"copied the answer ({_lines(answer.source)})")


def copy_code_block(app: App[None]) -> None:
    answer = last_answer(app)
    blocks = answer.code_blocks() if answer is not None else []
    if not blocks:
        app.notify("the last answer has no code block", severity="warning")
        return
    language, code = blocks[-1]
    app.copy_to_clipboard(code)
    app.notify(f"copied the {language + ' ' if language else ''}code block ({_lines(code)})")


def _lines(text: str) -> str:
    count = len(text.splitlines()) or 1
    return f"{count} line{'s' if count != 1 else ''}"
