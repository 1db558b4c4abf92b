"""Building the chat app over a scripted engine, for fast and deterministic TUI tests, and
driving it: sending prompts and waiting for what they started."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from fake_engine import ScriptedEngine, ScriptedModel
from textual.app import App
from textual.pilot import Pilot
from textual.worker import WorkerCancelled

from termllm.app import Services, build_services
from termllm.config import load_config
from termllm.tui.app import ChatApp
from termllm.tui.widgets.answer import AnswerView
from termllm.tui.widgets.messages import ConversationView, UserMessage
from termllm.tui.widgets.prompt import PromptInput

SIZE = (100, 30)


def scripted_services(
    answer: Sequence[str], delay_s: float = 0.0
) -> tuple[Services, ScriptedModel]:
    model = ScriptedModel(list(answer), delay_s=delay_s)
    services = build_services(load_config(), engine_factory=lambda: ScriptedEngine(model))
    return services, model


def scripted_app(
    answer: Sequence[str], delay_s: float = 0.0, conversation_id: str | None = None
) -> tuple[ChatApp, ScriptedModel]:
    services, model = scripted_services(answer, delay_s)
    return ChatApp(services, conversation_id=conversation_id), model


async def settle(pilot: Pilot[None]) -> None:
    """Wait for what a key or message started: workers, then the screen."""
    # A pause first: a closed dialog's callback, which may start a worker, runs as a message.
    await pilot.pause()
    for worker in list(pilot.app.workers):
        # A worker whose last act closes its own screen (a pull that finished or was
        # cancelled) is cancelled with that screen when the loop unmounts it first: settled.
        with contextlib.suppress(WorkerCancelled):
            await worker.wait()
    await pilot.pause()


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool]) -> None:
    """Pause until `condition` holds: a dialog's result reaches the app a few messages after
    its worker ends."""
    for _ in range(200):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("the condition never held")


async def send(pilot: Pilot[None], text: str) -> None:
    """Type a prompt, press Enter and wait until the answer is finished and shown."""
    pilot.app.query_one(PromptInput).insert(text)
    await pilot.press("enter")
    await settle(pilot)


async def submit(pilot: Pilot[None], text: str) -> None:
    """Send a prompt wherever the focus is (after a dialog, say), and wait for the answer."""
    prompt = pilot.app.query_one(PromptInput)
    prompt.insert(text)
    await prompt.run_action("submit")
    await settle(pilot)


def notices(app: App[None]) -> list[str]:
    """The notifications' messages, oldest first."""
    return [notification.message for notification in app._notifications]


def shown(app: ChatApp) -> list[tuple[str, str]]:
    """(role, text) of each message on screen."""
    rows: list[tuple[str, str]] = []
    for child in app.query_one(ConversationView).children:
        if isinstance(child, UserMessage):
            rows.append(("user", str(child.content)))
        elif isinstance(child, AnswerView):
            rows.append(("assistant", child.source))
    return rows


def saved(services: Services, conversation_id: str | None) -> list[tuple[str, str, str | None]]:
    """(role, content, finish reason) of each message of the conversation's current branch."""
    assert conversation_id is not None
    _, records = services.history.transcript(conversation_id)
    return [(r.role, r.content, r.finish_reason) for r in records]
