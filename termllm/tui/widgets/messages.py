"""The conversation pane: user messages as plain text, answers as Markdown streamed in place.
A message with alternatives (regenerated answers, edited questions) says which one it is."""

from __future__ import annotations

from collections.abc import Sequence

from textual.containers import VerticalScroll
from textual.widgets import Markdown, Static

from termllm.domain import FinishReason
from termllm.tui.widgets.final_render import render_final

ENDINGS = {
    FinishReason.CANCELLED: "cancelled",
    FinishReason.ERROR: "failed",
    FinishReason.LENGTH: "cut at the token limit",
}


class UserMessage(Static):
    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False, classes="message user")

    def set_alternative(self, label: str | None) -> None:
        self.border_subtitle = label or ""
        self.set_class(label is not None, "branched")


class AnswerView(Markdown):
    """One answer; while it streams, each frame's text is appended (only the last block is
    parsed again)."""

    def __init__(self, text: str = "", finish_reason: str | None = None) -> None:
        super().__init__(text, classes="message assistant")
        self._finished = finish_reason is not None
        self._ending = ""
        self._alternative = ""
        self.set_ending(finish_reason)

    async def add_fragment(self, fragment: str) -> None:
        """Frames already batch the streamed text, which is what Markdown.get_stream() is for;
        appending directly lets the frame know when its text is on the widget."""
        if self._finished:
            return  # A batch that arrives after the final render is already in it.
        await self.append(fragment)

    async def finish(self, content: str, finish_reason: str, error: str | None) -> None:
        """One full render of the final text: the streamed blocks may have split differently."""
        self._finished = True
        await render_final(self, content)
        self.set_ending(finish_reason, error)

    def set_ending(self, finish_reason: str | None, error: str | None = None) -> None:
        ending = ENDINGS.get(FinishReason(finish_reason)) if finish_reason else None
        if ending is None:
            return
        self.add_class(f"ended-{finish_reason}")
        self._ending = f"{ending}: {error}" if error else ending
        self._show_subtitle()

    def set_alternative(self, label: str | None) -> None:
        self._alternative = label or ""
        self.set_class(label is not None, "branched")
        self._show_subtitle()

    def _show_subtitle(self) -> None:
        self.border_subtitle = " · ".join(
            part for part in (self._ending, self._alternative) if part
        )


class ConversationView(VerticalScroll):
    def on_mount(self) -> None:
        # Anchored: new text keeps the view at the bottom until the user scrolls up.
        self.anchor()

    async def show(self, messages: list[tuple[str, str, str | None]]) -> None:
        """(role, content, finish_reason) triples; the system prompt is not shown."""
        await self.remove_children()
        widgets = [
            UserMessage(content) if role == "user" else AnswerView(content, finish_reason)
            for role, content, finish_reason in messages
            if role in ("user", "assistant")
        ]
        await self.mount_all(widgets)
        self.anchor()

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
