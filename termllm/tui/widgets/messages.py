"""The conversation pane: user messages as plain text, answers as Markdown streamed in place."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from termllm.domain import FinishReason

ENDINGS = {
    FinishReason.CANCELLED: "cancelled",
    FinishReason.ERROR: "failed",
    FinishReason.LENGTH: "cut at the token limit",
}


class UserMessage(Static):
    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False, classes="message user")


class AnswerView(Markdown):
    """One answer; while it streams, fragments go through a MarkdownStream that batches them."""

    def __init__(self, text: str = "", finish_reason: str | None = None) -> None:
        super().__init__(text, classes="message assistant")
        self._stream: MarkdownStream | None = None
        self._finished = finish_reason is not None
        self.set_ending(finish_reason)

    async def add_fragment(self, fragment: str) -> None:
        if self._finished:
            return  # A batch that arrives after the final render is already in it.
        if self._stream is None:
            self._stream = Markdown.get_stream(self)
        await self._stream.write(fragment)

    async def finish(self, content: str, finish_reason: str, error: str | None) -> None:
        """One full render of the final text: the streamed blocks may have split differently."""
        self._finished = True
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        await self.update(content)
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
