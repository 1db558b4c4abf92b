"""The conversation list (newest first) under a filter box that narrows it as the user types.

The filter asks the history's full-text search, which also matches titles (and, with the box
under it ticked, answers' reasoning); the search runs in a thread worker a moment after the last
keystroke, so typing never waits for the database."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.timer import Timer
from textual.widgets import Checkbox, Input, OptionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist
from textual.worker import get_current_worker

from termllm.safe_text import one_line
from termllm.tui.failures import failure_text

if TYPE_CHECKING:
    from termllm.store import ConversationRecord, SearchHit

logger = logging.getLogger(__name__)

# Long enough to let a word be typed, short enough to feel immediate.
FILTER_DELAY_S = 0.15
SNIPPET_WIDTH = 26
MARK_START, MARK_END = "[", "]"


class FindConversations(Protocol):
    def __call__(self, query: str, *, reasoning: bool = False) -> Mapping[str, SearchHit]: ...


BUSY_MARK = "● "
# The list holds the most recent conversations: building thousands of entries stalled the app
# at every question and answer. The filter searches them all.
SIDEBAR_LIMIT = 200


class ConversationList(OptionList):
    def show(
        self,
        entries: Sequence[tuple[str, str]],
        current: str | None,
        matches: Mapping[str, SearchHit] | None = None,
        busy: str | None = None,
        older_hint: str | None = None,
    ) -> None:
        """(id, title) entries (with why each matched, when filtered), `current` highlighted;
        `busy` is the conversation whose answer is streaming, marked in the list; `older_hint`
        ends the list when older conversations exist beyond it."""
        self.clear_options()
        self.add_options(
            Option(_prompt(title, matches.get(key) if matches else None, key == busy), id=key)
            for key, title in entries
        )
        if older_hint:
            self.add_option(Option(Content.styled(older_hint, "italic $text-muted"), disabled=True))
        self.select(current)

    def select(self, conversation_id: str | None) -> None:
        """Highlight a conversation without announcing it as chosen."""
        if conversation_id is None:
            self.highlighted = None
            return
        try:
            self.highlighted = self.get_option_index(conversation_id)
        except OptionDoesNotExist:
            self.highlighted = None


def _prompt(title: str, hit: SearchHit | None, busy: bool) -> Content:
    # Content, not a string: the option list would read a title's brackets as markup.
    title = BUSY_MARK + one_line(title) if busy else one_line(title)
    if hit is None or hit.role is None:
        return Content(title)
    return Content.assemble(title, "\n", *_snippet_parts(hit.snippet))


def _snippet_parts(snippet: str) -> list[tuple[str, str]]:
    """One line of a search snippet from a word shortly before its first match, matches bold."""
    snippet = one_line(snippet)
    mark = max(0, snippet.find(MARK_START))
    head, rest = snippet[:mark], snippet[mark:]
    cut = len(head) - SNIPPET_WIDTH // 3
    if cut > 0:
        space = head.find(" ", cut)
        head = "…" + (head[space + 1 :] if space != -1 else "")
    parts: list[tuple[str, str]] = []
    used = 0
    for index, piece in enumerate((head + rest).replace(MARK_END, MARK_START).split(MARK_START)):
        piece = piece[: max(0, SNIPPET_WIDTH - used)]
        used += len(piece)
        if piece:
            parts.append((piece, "bold" if index % 2 else "dim"))
    return parts


class FilterBox(Input):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Clear or leave the filter", show=False),
        Binding("down", "into_list", "To the list", show=False),
    ]

    async def action_leave(self) -> None:
        if self.value:
            self.value = ""
        else:
            await self.run_action("app.focus_prompt")

    def action_into_list(self) -> None:
        self.post_message(self.Submitted(self, self.value))


class Sidebar(Vertical):
    """The filter box, the list, and the "no matches" line that replaces an empty result."""

    def __init__(self, find: FindConversations, *, filter_key: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self._find = find
        self._filter_key = filter_key
        self._conversations: list[ConversationRecord] = []
        self._current: str | None = None
        self._busy: str | None = None
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield FilterBox(placeholder=f"Filter ({self._filter_key})", id="filter")
        # Shown while filtering: what a thinking model reasoned is searched only when asked.
        yield Checkbox("in reasoning too", id="filter-reasoning", compact=True)
        yield Static(id="no-matches", markup=False)
        yield ConversationList(id="conversations")

    @property
    def query_text(self) -> str:
        return self.query_one(FilterBox).value.strip()

    def show(
        self,
        conversations: Sequence[ConversationRecord],
        current: str | None,
        busy: str | None = None,
    ) -> None:
        """A fresh list from the store (the most recent SIDEBAR_LIMIT, and one more to tell
        whether older ones exist); an active filter is applied again. `busy` is the
        conversation whose answer is streaming."""
        self._conversations = list(conversations)
        self._current = current
        self._busy = busy
        if self.query_text:
            self._search(self.query_text)
        else:
            self._show_matches("", None)

    def select(self, conversation_id: str | None) -> None:
        self._current = conversation_id
        self.query_one(ConversationList).select(conversation_id)

    def focus_filter(self) -> None:
        self.query_one(FilterBox).focus()

    def focus_list(self) -> None:
        """Focus the list on the current conversation's row, else the first, so that Enter
        opens one straight away."""
        conversations = self.query_one(ConversationList)
        conversations.focus()
        conversations.select(self._current)
        if conversations.highlighted is None and conversations.option_count:
            conversations.highlighted = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        query = self.query_text
        self.set_class(bool(query), "-filtering")
        if query:
            self._timer = self.set_timer(FILTER_DELAY_S, lambda: self._search(query))
        else:
            self.workers.cancel_group(self, "filter")
            self._show_matches("", None)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        if self.query_text:
            self._search(self.query_text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.query_one(ConversationList).option_count:
            self.focus_list()

    def _search(self, query: str) -> None:
        self._search_in_thread(query, self.query_one(Checkbox).value)

    @work(thread=True, exclusive=True, group="filter", exit_on_error=False)
    def _search_in_thread(self, query: str, reasoning: bool) -> None:
        try:
            matches = self._find(query, reasoning=reasoning)
        except Exception as err:
            message = failure_text(err, logger, "filtering conversations")
            self.app.call_from_thread(self.notify, message, severity="error")
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_matches, query, matches)

    def _show_matches(self, query: str, matches: Mapping[str, SearchHit] | None) -> None:
        if query != self.query_text:
            return  # The user typed on while this search ran; a newer one follows.
        shown = [(c.id, c.title) for c in self._conversations[:SIDEBAR_LIMIT]]
        more = len(self._conversations) > SIDEBAR_LIMIT
        if matches is not None:
            # Newest first, then matches older than the list, best match first.
            listed = {key for key, _ in shown}
            shown = [entry for entry in shown if entry[0] in matches] + [
                (key, hit.conversation_title) for key, hit in matches.items() if key not in listed
            ]
            more = False
        hint = f"older ones: {self._filter_key} to search" if more else None
        self.query_one(ConversationList).show(shown, self._current, matches, self._busy, hint)
        empty = self.query_one("#no-matches", Static)
        empty.display = matches is not None and not shown
        empty.update(f"No conversation matches “{query}”")
