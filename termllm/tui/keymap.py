"""Binding ids for every app action, their default keys, and the `tui.keymap` setting.

The setting reads "id=key,id=key" (e.g. "new_conversation=ctrl+t,help=f2"). Mistakes become
one-line problems for the app to show, never exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping

from textual.keys import Keys, key_to_character

# Defaults avoid the keys TextArea binds itself (ctrl+a/e/k/u/w/x/c/v/z/y/d, ctrl+arrows),
# because a focused prompt would swallow them before an app binding sees them.
DEFAULT_KEYS: dict[str, str] = {
    "send": "enter",
    "newline": "shift+enter,ctrl+j",
    "cancel": "escape",
    "regenerate": "ctrl+r",
    "previous_alternative": "alt+left",
    "next_alternative": "alt+right",
    "edit_last_message": "ctrl+g",
    "select_previous_message": "alt+up",
    "select_next_message": "alt+down",
    "copy_answer": "ctrl+o",
    "copy_code_block": "ctrl+b",
    "toggle_thinking": "alt+t",
    "new_conversation": "ctrl+n",
    "rename_conversation": "f2",
    "delete_conversation": "f8",
    "export_conversation": "ctrl+s",
    "model_picker": "f3",
    "pull_model": "f4",
    "conversation_settings": "f5",
    "focus_sidebar": "ctrl+l",
    "focus_prompt": "ctrl+t",
    "filter_conversations": "ctrl+f",
    "command_palette": "ctrl+p",
    "help": "f1",
    "quit": "ctrl+q",
    "switch_theme": "f9",
    "scroll_up": "pageup",
    "scroll_down": "pagedown",
}

_MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})
_NAMED_KEYS = frozenset(key.value for key in Keys)


def parse_keymap(text: str) -> tuple[dict[str, str], list[str]]:
    """The valid overrides in `text` (id -> key) and one line per entry that was dropped."""
    overrides: dict[str, str] = {}
    problems: list[str] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        binding_id, equals, key = (piece.strip() for piece in entry.partition("="))
        if not equals:
            problems.append(f"keymap: {entry!r} is not id=key")
        elif binding_id not in DEFAULT_KEYS:
            problems.append(f"keymap: {binding_id!r} is not a binding id")
        elif not key:
            problems.append(f"keymap: {binding_id!r} has no key")
        elif not is_valid_key(key):
            problems.append(f"keymap: {binding_id}={key}: {key!r} is not a key")
        else:
            overrides[binding_id] = key
    _drop_clashes(overrides, problems)
    return overrides, problems


def is_valid_key(key: str) -> bool:
    """Whether `key` is one key in Textual syntax: modifiers joined by '+', then a key name."""
    *modifiers, name = key.split("+")
    if not name or any(modifier not in _MODIFIERS for modifier in modifiers):
        return False
    return len(name) == 1 or name in _NAMED_KEYS or key_to_character(name) is not None


def _drop_clashes(overrides: dict[str, str], problems: list[str]) -> None:
    """Remove overrides that leave two ids on one key; repeat, as a revert can clash anew."""
    while True:
        dropped = False
        for key, binding_ids in _clashes({**DEFAULT_KEYS, **overrides}).items():
            for binding_id in (found for found in binding_ids if found in overrides):
                others = ", ".join(other for other in binding_ids if other != binding_id)
                problems.append(
                    f"keymap: {binding_id}={overrides.pop(binding_id)}: {key} is also bound to "
                    f"{others}"
                )
                dropped = True
        if not dropped:
            return


def _clashes(keymap: dict[str, str]) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = {}
    for binding_id, keys in keymap.items():
        for key in keys.split(","):
            owners.setdefault(_canonical(key.strip()), []).append(binding_id)
    return {key: ids for key, ids in owners.items() if len(ids) > 1}


# Key names as hints spell them where capitalising the name would not do.
_KEY_LABELS = {"escape": "Esc", "pageup": "PgUp", "pagedown": "PgDn", "question_mark": "?"}


def key_label(key: str) -> str:
    """One key as the app's hints write it: "ctrl+f" is "Ctrl+F", "escape" is "Esc"."""
    *modifiers, name = key.strip().split("+")
    character = key_to_character(name) if len(name) > 1 else None
    if name in _KEY_LABELS:
        label = _KEY_LABELS[name]
    elif character is not None and character.isprintable() and not character.isspace():
        label = character
    else:
        label = name[0].upper() + name[1:]
    return "+".join([*(modifier.capitalize() for modifier in modifiers), label])


class KeyHints:
    """The key a hint names for each binding id: the first of its keys, with the user's keymap
    applied, so that no hint names a key the user moved elsewhere."""

    def __init__(self, overrides: Mapping[str, str]) -> None:
        self._overrides = dict(overrides)

    def __getitem__(self, binding_id: str) -> str:
        keys = self._overrides.get(binding_id, DEFAULT_KEYS[binding_id])
        return key_label(keys.split(",")[0])


def _canonical(key: str) -> str:
    """One spelling per key, so "?" and "question_mark" are recognised as the same key."""
    prefix, plus, name = key.rpartition("+")
    character = key_to_character(name) if len(name) > 1 else None
    return f"{prefix}{plus}{character or name}"
