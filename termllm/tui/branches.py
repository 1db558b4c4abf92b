"""Regenerating, editing and flipping between alternatives in the chat app.

The app keeps its actions thin and asks this helper what to send and where to show it; the
helper keeps the two bits of state these keys need: the question being edited, and which message
of the branch the alternative keys flip.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import App

from termllm.errors import TermllmError
from termllm.services.branches import BranchEntry
from termllm.services.history import HistoryService
from termllm.services.turn import AnswerAgain, EditedQuestion, NewQuestion, Turn
from termllm.tui.keymap import KeyHints
from termllm.tui.widgets.answer import AnswerView
from termllm.tui.widgets.messages import ConversationView
from termllm.tui.widgets.prompt import PromptInput


def alternative_label(index: int, count: int) -> str | None:
    return f"alternative {index + 1}/{count}" if count > 1 else None


def shown_labels(entries: list[BranchEntry]) -> list[str | None]:
    """The label of each message the conversation pane shows (it leaves system prompts out)."""
    return [
        alternative_label(entry.index, entry.count)
        for entry in entries
        if entry.message.role in ("user", "assistant")
    ]


@dataclass(frozen=True)
class _Edit:
    conversation_id: str
    question_id: str
    draft: str
    """What the prompt held when the edit began: it comes back when the edit ends."""


class Branches:
    def __init__(self, app: App[None], history: HistoryService, keys: KeyHints) -> None:
        self._app = app
        self._history = history
        self._keys = keys
        self._editing: _Edit | None = None
        # (conversation, depth in its branch) of the message last flipped: the alternative keys
        # keep flipping it, even when the branch shown below it has alternatives of its own.
        self._flipping: tuple[str, int] | None = None

    async def prepare_send(self, conversation_id: str | None, text: str) -> tuple[Turn, AnswerView]:
        """The turn a submitted prompt starts (an edit when one is under way) and its view."""
        view = self._app.query_one(ConversationView)
        edit, self._editing = self._editing, None
        self._flipping = None
        self._show_editing(False)
        if edit is None or edit.conversation_id != conversation_id:
            return NewQuestion(text, conversation_id), await view.add_exchange(text)
        self._show_draft(edit.draft)
        count = self._count(edit.conversation_id, edit.question_id) + 1
        answer = await view.ask_again(text, alternative_label(count - 1, count))
        return EditedQuestion(edit.conversation_id, edit.question_id, text), answer

    async def prepare_regenerate(
        self, conversation_id: str | None
    ) -> tuple[Turn, AnswerView] | None:
        """The turn that answers the last question again, with its view; None (and a notice)
        when there is nothing to answer again."""
        entries, question = self._last_question(conversation_id, "to answer again")
        if conversation_id is None or question is None:
            return None
        answers = [entry for entry in entries if entry.message.parent_id == question.message.id]
        count = (answers[0].count if answers else 0) + 1
        self._flipping = None
        view = self._app.query_one(ConversationView)
        answer = await view.answer_again(alternative_label(count - 1, count))
        return AnswerAgain(conversation_id), answer

    def start_edit(self, conversation_id: str | None) -> None:
        """Put the last question in the prompt; sending it saves an alternative question."""
        _, question = self._last_question(conversation_id, "to edit")
        if conversation_id is None or question is None:
            return
        prompt = self._app.query_one(PromptInput)
        # A second Ctrl+G while editing keeps the draft of the first.
        draft = self._editing.draft if self._editing is not None else prompt.text
        self._show_draft(question.message.content)
        prompt.focus()
        self._editing = _Edit(conversation_id, question.message.id, draft)
        self._show_editing(True)

    def abort_edit(self) -> None:
        """Leave editing with the original question untouched and the prompt as it was before
        the edit began."""
        if self._editing is not None:
            draft, self._editing = self._editing.draft, None
            self._show_draft(draft)
            self._show_editing(False)

    def flip(self, conversation_id: str | None, step: int) -> bool:
        """Make the previous (-1) or next (+1) alternative current; True when it changed."""
        entries = self._safe_branch(conversation_id) if conversation_id else []
        depth = self._flip_depth(conversation_id, entries)
        if conversation_id is None or depth is None:
            self._app.notify("no alternatives here yet: regenerate or edit to make one")
            return False
        entry = entries[depth]
        target = entry.index + step
        if not 0 <= target < entry.count:
            self._app.bell()
            return False
        try:
            alternatives = self._history.alternatives(conversation_id, entry.message.id)
            self._history.select_alternative(conversation_id, alternatives.messages[target].id)
        except TermllmError as err:
            self._app.notify(err.message, severity="error")
            return False
        self._flipping = (conversation_id, depth)
        return True

    def _flip_depth(self, conversation_id: str | None, entries: list[BranchEntry]) -> int | None:
        if self._flipping is not None:
            flipped_in, depth = self._flipping
            if flipped_in == conversation_id and depth < len(entries) and entries[depth].count > 1:
                return depth
        # Else the lowest message with alternatives: the last answer after a regenerate, the
        # last question after an edit.
        return next((n for n in reversed(range(len(entries))) if entries[n].count > 1), None)

    def _last_question(
        self, conversation_id: str | None, purpose: str
    ) -> tuple[list[BranchEntry], BranchEntry | None]:
        """The current branch and its last question (None, after saying so, when it has none)."""
        entries = self._safe_branch(conversation_id) if conversation_id else []
        question = next((e for e in reversed(entries) if e.message.role == "user"), None)
        if question is None:
            self._app.notify(f"no question {purpose} yet")
        return entries, question

    def _count(self, conversation_id: str, message_id: str) -> int:
        try:
            return len(self._history.alternatives(conversation_id, message_id).messages)
        except TermllmError:
            return 1

    def _safe_branch(self, conversation_id: str) -> list[BranchEntry]:
        try:
            return self._history.branch(conversation_id)
        except TermllmError as err:
            self._app.notify(err.message, severity="error")
            return []

    def _show_draft(self, text: str) -> None:
        prompt = self._app.query_one(PromptInput)
        prompt.load_text(text)
        prompt.move_cursor(prompt.document.end)

    def _show_editing(self, editing: bool) -> None:
        prompt = self._app.query_one(PromptInput)
        prompt.border_title = (
            f"Editing your last question · {self._keys['cancel']} keeps the original"
            if editing
            else ""
        )
        prompt.set_class(editing, "editing")
