"""Copying the last answer, or its last code block, to the clipboard (OSC 52 through Textual)."""

from __future__ import annotations

from textual.app import App
from textual.widgets.markdown import MarkdownFence

from termllm.tui.widgets.messages import AnswerView, ConversationView


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
    # The rendered blocks, not a second parse of the source: what is copied is what is shown.
    fences = list(answer.query(MarkdownFence)) if answer is not None else []
    if not fences:
        app.notify("the last answer has no code block", severity="warning")
        return
    fence = fences[-1]
    app.copy_to_clipboard(fence.code)
    language = f"{fence.lexer} " if fence.lexer else ""
    app.notify(f"copied the {language}code block ({_lines(fence.code)})")


def _lines(text: str) -> str:
    count = len(text.splitlines()) or 1
    return f"{count} line{'s' if count != 1 else ''}"
