"""The keymap setting: valid overrides apply, mistakes become one-line problems."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.widgets import TextArea

from termllm.tui.commands import key_actions, palette_commands
from termllm.tui.keymap import DEFAULT_KEYS, is_valid_key, parse_keymap

ISSUE_ACTIONS = {
    *("send", "newline", "cancel", "regenerate", "previous_alternative", "next_alternative"),
    *("edit_last_message", "copy_answer", "copy_code_block", "new_conversation"),
    *("rename_conversation", "delete_conversation", "export_conversation", "model_picker"),
    *("pull_model", "conversation_settings", "focus_sidebar", "focus_prompt"),
    *("filter_conversations", "command_palette", "help", "quit", "switch_theme"),
    *("scroll_up", "scroll_down", "select_previous_message", "select_next_message"),
    "toggle_thinking",
}


def test_every_action_has_a_valid_distinct_default() -> None:
    assert set(DEFAULT_KEYS) == ISSUE_ACTIONS
    keys = [key for value in DEFAULT_KEYS.values() for key in value.split(",")]
    assert all(is_valid_key(key) for key in keys)
    assert len(keys) == len(set(keys))
    assert parse_keymap(",".join(f"{k}={v.split(',')[0]}" for k, v in DEFAULT_KEYS.items())) == (
        {k: v.split(",")[0] for k, v in DEFAULT_KEYS.items()},
        [],
    )


def test_valid_overrides() -> None:
    assert parse_keymap(" new_conversation = ctrl+w , help=f12,quit=question_mark") == (
        {"new_conversation": "ctrl+w", "help": "f12", "quit": "question_mark"},
        [],
    )
    assert parse_keymap("") == ({}, [])


def test_swapping_two_keys_is_not_a_clash() -> None:
    assert parse_keymap("help=f2,rename_conversation=f1") == (
        {"help": "f2", "rename_conversation": "f1"},
        [],
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("helpp=f2", "keymap: 'helpp' is not a binding id"),
        ("help=", "keymap: 'help' has no key"),
        ("help", "keymap: 'help' is not id=key"),
        ("help=ctrl+", "keymap: help=ctrl+: 'ctrl+' is not a key"),
        ("help=nosuchkey", "keymap: help=nosuchkey: 'nosuchkey' is not a key"),
        ("help=hyperctrl+x", "keymap: help=hyperctrl+x: 'hyperctrl+x' is not a key"),
        ("help=ctrl+n", "keymap: help=ctrl+n: ctrl+n is also bound to new_conversation"),
    ],
)
def test_problems(text: str, problem: str) -> None:
    overrides, problems = parse_keymap(f"{text},quit=ctrl+w")

    assert overrides == {"quit": "ctrl+w"}
    assert problems == [problem]


def test_two_overrides_on_one_key_are_both_dropped() -> None:
    overrides, problems = parse_keymap("help=f12,quit=f12")

    assert overrides == {}
    assert problems == [
        "keymap: help=f12: f12 is also bound to quit",
        "keymap: quit=f12: f12 is also bound to help",
    ]


def test_same_key_in_two_spellings_clashes() -> None:
    overrides, problems = parse_keymap("help=?,quit=question_mark")

    assert overrides == {}
    assert len(problems) == 2


def test_garbage_never_raises() -> None:
    overrides, problems = parse_keymap("==,,=x,\x00=\x01, ;;;")

    assert overrides == {}
    assert len(problems) == 4


class KeymapHost(App[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding(DEFAULT_KEYS["help"], "opened", id="help")]

    opened = 0

    def action_opened(self) -> None:
        self.opened += 1


def test_overrides_apply_with_set_keymap() -> None:
    app = KeymapHost()
    overrides, _ = parse_keymap("help=f12")

    async def press_old_and_new_key() -> None:
        async with app.run_test() as pilot:
            app.set_keymap(overrides)
            await pilot.press("f1")
            await pilot.press("f12")

    asyncio.run(press_old_and_new_key())

    assert app.opened == 1


class DescribedHost(App[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(DEFAULT_KEYS["help"], "help", "Show keys", id="help"),
        Binding(DEFAULT_KEYS["quit"], "quit", "Quit", id="quit"),
    ]


def test_help_and_palette_show_the_keymap_they_are_given() -> None:
    app = DescribedHost()
    # The keymap passed in decides, not whatever Textual holds.
    app.set_keymap({"quit": "f10"})
    overrides, _ = parse_keymap("help=f12")

    assert [(a.binding_id, a.keys) for a in key_actions(app, keymap={})] == [
        ("help", "f1"),
        ("quit", "ctrl+q"),
    ]
    assert [(a.binding_id, a.keys) for a in key_actions(app, keymap=overrides)] == [
        ("help", "f12"),
        ("quit", "ctrl+q"),
    ]
    two_keys = key_actions(app, keymap={"quit": "ctrl+w,f10"})
    assert [a.keys for a in two_keys] == ["f1", "ctrl+w / f10"]
    palette = palette_commands(app, [SystemCommand("Quit", "Textual's", print)], keymap=overrides)
    assert [(c.title, c.help) for c in palette] == [("Show keys", "f12"), ("Quit", "ctrl+q")]


def test_app_keys_leave_the_prompts_own_keys_alone() -> None:
    editing_keys = {
        key.strip()
        for binding in TextArea.BINDINGS
        if isinstance(binding, Binding)
        for key in binding.key.split(",")
    }
    typed_in_prompt = {"send", "newline"}
    # Priority bindings on purpose: in a prompt of a few lines its own page keys barely move.
    taken_from_prompt = {"scroll_up", "scroll_down"}
    for action, keys in DEFAULT_KEYS.items():
        if action not in typed_in_prompt | taken_from_prompt:
            clashes = editing_keys & {key.strip() for key in keys.split(",")}
            assert not clashes, f"{action} uses {clashes}, which the prompt keeps for editing"
