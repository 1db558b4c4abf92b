"""The conversation pane: user messages as plain text, answers as Markdown streamed in place."""

from __future__ import annotations

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


class AnswerView(Markdown):
    """One answer; while it streams, each frame's text is appended (only the last block is
    parsed again)."""

    def __init__(self, text: str = "", finish_reason: str | None = None) -> None:
        super().__init__(text, classes="message assistant")
        self._finished = finish_reason is not None
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
        self.border_subtitle = f"{ending}: {error}" if error else ending


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

    async def add_exchange(self, question: str) -> AnswerView:
        answer = AnswerView()
        await self.mount_all([UserMessage(question), answer])
        self.anchor()
        return answer

    async def add_answer(self) -> AnswerView:
        """An empty answer under the last question, for an answer that is still streaming."""
        answer = AnswerView()
        await self.mount(answer)
        self.anchor()
        return answer
