"""Moving about the main screen: the page keys scroll the conversation wherever no one else
pages, and a narrow terminal hands the sidebar's columns to the conversation and the prompt."""

from __future__ import annotations

from typing import Any

from textual.app import App

from termllm.tui.widgets.sidebar import ConversationList

# Below this many columns the 32-column sidebar left too little for the answers to be read.
NARROW_WIDTH = 80
# The screen's class by its width: app.tcss shows the sidebar of a "-narrow" screen only while
# the focus is in it (Ctrl+L, Ctrl+F), so leaving it for the prompt hides it again.
BREAKPOINTS: list[tuple[int, str]] = [(0, "-narrow"), (NARROW_WIDTH, "-wide")]


def pages_conversation(app: App[Any]) -> bool:
    """Whether the page keys scroll the conversation: on the main screen only (a dialog pages
    its own list), and not in the conversation list, whose own page keys move through its
    rows."""
    on_main_screen = bool(app.screen_stack) and app.screen is app.screen_stack[0]
    return on_main_screen and not isinstance(app.focused, ConversationList)
