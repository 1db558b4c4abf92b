"""The chat app's key bindings: one per binding id of the keymap, with the action it runs and the
description that the help screen and the command palette show."""

from __future__ import annotations

from textual.binding import Binding, BindingType

from termllm.tui.keymap import DEFAULT_KEYS

# (binding id, action, description); the prompt's own keys (send, newline) live on the prompt.
_APP_ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("new_conversation", "new_conversation", "New conversation"),
    ("cancel", "cancel", "Cancel the answer, selection or edit"),
    ("regenerate", "regenerate", "Regenerate the answer"),
    ("previous_alternative", "previous_alternative", "Previous alternative"),
    ("next_alternative", "next_alternative", "Next alternative"),
    ("edit_last_message", "edit_last_message", "Edit the last question"),
    ("select_previous_message", "select_message(-1)", "Select the message above"),
    ("select_next_message", "select_message(1)", "Select the message below"),
    ("copy_answer", "copy_answer", "Copy the selection or the last answer"),
    ("copy_code_block", "copy_code_block", "Copy its code block (again: previous)"),
    ("toggle_thinking", "toggle_thinking", "Open or fold the answer's reasoning"),
    ("help", "help", "Help"),
    ("focus_sidebar", "focus_sidebar", "Conversations"),
    ("focus_prompt", "focus_prompt", "Prompt"),
    ("filter_conversations", "filter_conversations", "Filter conversations"),
    ("scroll_up", "scroll_conversation(-1)", "Scroll the conversation up"),
    ("scroll_down", "scroll_conversation(1)", "Scroll the conversation down"),
    ("rename_conversation", "rename_conversation", "Rename conversation"),
    ("delete_conversation", "delete_conversation", "Delete conversation"),
    ("export_conversation", "export_conversation", "Export to Markdown"),
    ("command_palette", "command_palette", "Command palette"),
    ("switch_theme", "change_theme", "Theme"),
    ("model_picker", "model_picker", "Pick a model"),
    ("pull_model", "pull_model", "Pull a model"),
    ("conversation_settings", "conversation_settings", "Conversation settings"),
    ("quit", "quit", "Quit"),
)
# Seen before any focused widget's own bindings: the palette and quit work from a dialog too,
# and the page keys scroll the conversation from the prompt (whose own page keys move a cursor
# in a few lines); the app's check_action leaves them to dialogs and the conversation list.
_PRIORITY = frozenset({"command_palette", "quit", "scroll_up", "scroll_down"})
# `?` opens the help as well, outside the prompt (the prompt keeps typed characters for itself).
_EXTRA_KEYS = {"help": "question_mark"}


def app_bindings() -> list[BindingType]:
    bindings: list[BindingType] = []
    for binding_id, action, description in _APP_ACTIONS:
        keys = DEFAULT_KEYS[binding_id]
        if binding_id in _EXTRA_KEYS:
            keys = f"{keys},{_EXTRA_KEYS[binding_id]}"
        priority = binding_id in _PRIORITY
        bindings.append(Binding(keys, action, description, id=binding_id, priority=priority))
    return bindings
