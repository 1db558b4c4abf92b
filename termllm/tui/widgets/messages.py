"""The conversation pane: user messages as plain text, answers as Markdown streamed in place,
each after its reasoning (a folding section) when the model thought first. A message with
alternatives (regenerated answers, edited questions) says which one it is; one message at a time
can be selected, for the copy keys and the thinking key."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from termllm.tui.widgets.answer import AnswerView
from termllm.tui.widgets.thinking import ThinkingView


class ShownMessage(NamedTuple):
    role: str
    content: str
    finish_reason: str | None = None
    error: str | None = None
    reasoning: str | None = None
    """A thinking model's reasoning before the answer (None or empty: it did not think)."""
    reasoning_tokens: int | None = None


class UserMessage(Static):
    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False, classes="message user")
        self.text = text

    def set_alternative(self, label: str | None) -> None:
        # The bottom edge has no right corner for Textual to space the label from.
        self.border_subtitle = f"{label} " if label else ""
        self.set_class(label is not None, "branched")


# Painting answers' hidden blocks when idle: a slice of work per tick, little enough to go
# unnoticed while typing.
IDLE_PAINT_S = 0.004
IDLE_TICK_S = 0.05


class ConversationView(VerticalScroll):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._idle_painting: Timer | None = None
        self._selected: Widget | None = None

    @property
    def selected_message(self) -> Widget | None:
        """The message selected for copying, while it is on screen."""
        if self._selected is not None and self._selected.parent is not self:
            self._selected = None
        return self._selected

    def select_message(self, step: int) -> Widget | None:
        """Select the message `step` places from the selected one (-1: the one above). With
        none selected, a step up selects the last message; a step down past the last one
        leaves the selection."""
        messages: list[Widget] = [
            c for c in self.children if isinstance(c, UserMessage | AnswerView)
        ]
        current = self.selected_message
        if current is None:
            index = len(messages) - 1 if step < 0 else len(messages)
        else:
            index = max(messages.index(current) + step, 0)
        self.clear_selection()
        if index >= len(messages):
            return None
        chosen = self._selected = messages[index]
        chosen.add_class("selected")
        # A message taller than the view shows its start.
        tall = chosen.outer_size.height > self.size.height
        self.scroll_to_widget(chosen, animate=False, top=tall)
        return chosen

    def clear_selection(self) -> None:
        if self._selected is not None:
            self._selected.remove_class("selected")
        self._selected = None

    def on_answer_view_unpainted(self, event: AnswerView.Unpainted) -> None:
        event.stop()
        self._paint_idle_soon()

    def _paint_idle_soon(self) -> None:
        if self._idle_painting is None:
            self._idle_painting = self.set_timer(IDLE_TICK_S, self._paint_idle)

    def _paint_idle(self) -> None:
        """Paint the hidden blocks of the answers nearest the bottom first, one slice."""
        self._idle_painting = None
        deadline = time.perf_counter() + IDLE_PAINT_S
        waiting = [a for a in self.query_children(AnswerView) if a.waits_for_painting]
        for answer in reversed(waiting):
            if time.perf_counter() >= deadline:
                break
            answer.paint_hidden(deadline)
        if any(answer.waits_for_painting for answer in waiting):
            self._paint_idle_soon()

    def on_mount(self) -> None:
        # Anchored: new text keeps the view at the bottom until the user scrolls up.
        self.anchor()

    async def show(self, messages: list[ShownMessage]) -> None:
        """The messages of a conversation, the reasoning of answers folded; the system prompt
        is not shown."""
        await self.remove_children()
        widgets: list[Widget] = []
        for message in messages:
            if message.role == "user":
                widgets.append(UserMessage(message.content))
            elif message.role == "assistant":
                answer = AnswerView(message.content, message.finish_reason, message.error)
                if message.reasoning:
                    tokens = message.reasoning_tokens or 0
                    widgets.append(ThinkingView(message.reasoning, tokens=tokens))
                    answer.add_class("thought")
                widgets.append(answer)
        await self.mount_all(widgets)
        self.anchor()

    def add_thinking(self, answer: AnswerView, thinking: ThinkingView) -> ThinkingView:
        """Show `thinking` above `answer` (its reasoning has begun to stream)."""
        answer.add_class("thought")
        self.mount(thinking, before=answer)
        return thinking

    def toggle_thinking(self) -> ThinkingView | None:
        """Open or fold the reasoning of the selected answer (of the answer to a selected
        question), else of the last answer that has one; None when there is none."""
        children = list(self.children)
        selected = self.selected_message
        found: Widget | None
        if selected is not None:
            # The section sits between a question and its answer.
            index = children.index(selected) + (-1 if isinstance(selected, AnswerView) else 1)
            found = children[index] if 0 <= index < len(children) else None
        else:
            found = next((c for c in reversed(children) if isinstance(c, ThinkingView)), None)
        if not isinstance(found, ThinkingView):
            return None
        found.toggle()
        return found

    def mark_alternatives(self, labels: Sequence[str | None]) -> None:
        """One label per message shown, in order (None: a message without alternatives)."""
        shown = [child for child in self.children if isinstance(child, UserMessage | AnswerView)]
        for child, label in zip(shown, labels, strict=False):
            child.set_alternative(label)

    async def add_exchange(self, question: str, label: str | None = None) -> AnswerView:
        asked = UserMessage(question)
        asked.set_alternative(label)
        answer = AnswerView()
        await self.mount_all([asked, answer])
        self.anchor()
        return answer

    async def answer_again(self, label: str | None) -> AnswerView:
        """Replace what follows the last question with a new, empty answer."""
        await self._remove_after_last_question(keep_question=True)
        answer = AnswerView()
        answer.set_alternative(label)
        await self.mount(answer)
        self.anchor()
        return answer

    async def ask_again(self, question: str, label: str | None) -> AnswerView:
        """Replace the last question and what follows it with an edited one."""
        await self._remove_after_last_question(keep_question=False)
        return await self.add_exchange(question, label)

    async def _remove_after_last_question(self, *, keep_question: bool) -> None:
        children = list(self.children)
        last = max((n for n, c in enumerate(children) if isinstance(c, UserMessage)), default=-1)
        start = last + 1 if keep_question or last < 0 else last
        await self.remove_children(children[start:])

    async def add_answer(self) -> AnswerView:
        """An empty answer under the last question, for an answer that is still streaming."""
        answer = AnswerView()
        await self.mount(answer)
        self.anchor()
        return answer
