"""Snapshots of the key screens, over a scripted engine at a fixed size so they are stable."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot
from tui_support import SIZE, scripted_app

from termllm.tui.widgets.prompt import PromptInput

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
