"""Every key binding of the app as a named action, for the command palette and the help screen.

Both are generated from the bindings themselves (the app's and those of the widgets on its main
screen), so an action added with a binding shows up in both without further work."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.keys import format_key

from termllm.tui.keymap import DEFAULT_KEYS


@dataclass(frozen=True)
class KeyAction:
    binding_id: str
    description: str
    keys: str
    """As the user types them, with the keymap setting applied."""
    node: DOMNode
    """Where the action runs: the app or the widget that binds it."""
    action: str


def key_actions(app: App[Any], *, keymap: Mapping[str, str]) -> list[KeyAction]:
    """One entry per binding id of termllm's keymap, the app's bindings first, then the main
    screen's widgets' in screen order.

    `keymap` (binding id -> keys, as given to `App.set_keymap`) is what the app applies: Textual
    applies it per key press and leaves the bindings as declared, so their keys alone would
    show the defaults.
    """
    main_screen = app.screen_stack[0] if app.screen_stack else None
    nodes: list[DOMNode] = [app, *(main_screen.walk_children() if main_screen else ())]
    first: dict[str, tuple[DOMNode, Binding]] = {}
    keys: dict[str, list[str]] = {}
    for node in nodes:
        for binding in _bindings_of(node):
            if binding.id is None or binding.id not in DEFAULT_KEYS or not binding.description:
                continue
            owner, _ = first.setdefault(binding.id, (node, binding))
            if owner is node:
                # make_bindings gives one Binding per key of "f1,question_mark".
                keys.setdefault(binding.id, []).append(binding.key)
    return [
        KeyAction(
            binding_id,
            binding.description,
            key_names(keymap.get(binding_id, ",".join(keys[binding_id]))),
            node,
            binding.action,
        )
        for binding_id, (node, binding) in first.items()
    ]


def _bindings_of(node: DOMNode) -> Iterator[Binding]:
    # Along the class hierarchy, as Textual merges BINDINGS: a subclass inherits its bindings.
    for cls in type(node).__mro__:
        yield from Binding.make_bindings(vars(cls).get("BINDINGS", ()))


def key_names(keys: str) -> str:
    """Keys as shown: "ctrl+n,f2" becomes "ctrl+n / f2"; Enter is spelled out, not a symbol."""
    return " / ".join(
        key.strip() if key.strip() == "enter" else format_key(key.strip())
        for key in keys.split(",")
    )


def palette_commands(
    app: App[Any], textual_commands: Iterable[SystemCommand], *, keymap: Mapping[str, str]
) -> Iterator[SystemCommand]:
    """A command per key action (named as in the help screen, its keys as the help line, with
    `keymap` applied as in `key_actions`), then Textual's own commands that no action already
    covers."""
    actions = key_actions(app, keymap=keymap)
    for entry in actions:
        yield SystemCommand(
            entry.description,
            entry.keys,
            partial(app.run_action, entry.action, default_namespace=entry.node),
        )
    covered = {entry.description for entry in actions}
    yield from (command for command in textual_commands if command.title not in covered)
