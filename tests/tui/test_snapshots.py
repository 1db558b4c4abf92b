"""Snapshots of the key screens, over a scripted engine at a fixed size so they are stable."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from tui_support import SIZE, scripted_app, scripted_services, wait_until

from termllm.domain import GenParams
from termllm.tui.app import ChatApp
from termllm.tui.widgets.prompt import PromptInput
from termllm.tui.widgets.sidebar import ConversationList

CODE_ANSWER = [
    "Here is a **greeting** in Python:\n\n",
    "```python\n",
    "def greet(name: str) -> str:\n",
    '    return f"Hello, {name}!"\n',
    "```\n\n",
    "Call `greet` with any name.",
]


async def settle(pilot: Pilot[None]) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_the_empty_app(snap_compare: Any) -> None:
    app, _ = scripted_app(["unused"])
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_a_conversation_with_a_code_block(snap_compare: Any) -> None:
    app, _ = scripted_app(CODE_ANSWER)

    async def ask(pilot: Pilot[None]) -> None:
        await settle(pilot)
        pilot.app.query_one(PromptInput).insert("Write a greeting function")
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=ask)


def test_the_help_screen(snap_compare: Any) -> None:
    app, _ = scripted_app(["unused"])

    async def open_help(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=open_help)


def remembered_app(*exchanges: tuple[str, str]) -> ChatApp:
    services, _ = scripted_services(["unused"])
    for question, answer in exchanges:
        saved = services.history.save_question(None, "m", None, GenParams(), question)
        services.history.store.add_message(
            saved.conversation_id, saved.question_id, "assistant", answer, finish_reason="stop"
        )
    return ChatApp(services)


def test_the_filtered_conversation_list(snap_compare: Any) -> None:
    app = remembered_app(
        ("How long to boil pasta?", "About nine minutes for spaghetti, less for fresh pasta."),
        ("Fix a bike chain", "Use a chain tool."),
        ("Tomato soup recipe", "Simmer tomatoes; serve with pasta on the side."),
    )

    async def filter_list(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await pilot.press("ctrl+f", *"past")
        # The filter waits for typing to pause, then searches in a worker.
        conversations = pilot.app.query_one(ConversationList)
        await wait_until(pilot, lambda: conversations.option_count == 2)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=filter_list)


def test_the_delete_confirmation(snap_compare: Any) -> None:
    app = remembered_app(("Fix a bike chain", "Use a chain tool."))

    async def ask_to_delete(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await pilot.press("ctrl+l", "down", "f8")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=ask_to_delete)
