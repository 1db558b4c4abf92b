"""`ask` and the chat app are two faces of one turn: the same failure or warning leaves the same
history and reaches the user in each (stderr for `ask`, a notification in the app). Both run the
real engine: `ask` as a subprocess, the app through Pilot."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from termllm_cli import termllm_process
from tui_support import SIZE, saved, send

from termllm.app import build_services
from termllm.config import load_config
from termllm.tui.app import ChatApp

pytestmark = pytest.mark.anyio

STARTER = "SmolLM2-135M-Instruct"
LONG_TEXT = " ".join(f"word{i}" for i in range(600))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class Told:
    """What one front end told the user, and the conversation it left."""

    messages: list[str]
    conversation_id: str | None


def by_ask(model: str, text: str, env: dict[str, str]) -> Told:
    result = termllm_process("ask", "--max-tokens", "4", "-m", model, stdin=text, env=env)
    lines = [line for line in result.err.splitlines() if line]
    history = build_services(load_config({**os.environ, **env})).history
    recent = history.recent(1)
    return Told(lines, recent[0].id if recent else None)


async def by_app(model: str, text: str, env: dict[str, str]) -> Told:
    services = build_services(
        load_config({**os.environ, "TERMLLM_GENERATION_MAX_TOKENS": "4", **env})
    )
    app = ChatApp(services, model_ref=model)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await send(pilot, text)
        return Told([n.message for n in app._notifications], app.conversation_id)


async def told(front_end: str, model: str, text: str, env: dict[str, str] | None = None) -> Told:
    if front_end == "ask":
        return await anyio.to_thread.run_sync(by_ask, model, text, env or {})
    return await by_app(model, text, env or {})


@pytest.mark.parametrize("front_end", ["ask", "app"])
async def test_a_model_that_cannot_load_keeps_the_question_and_says_why(
    front_end: str, starter_model: Path, tmp_path: Path
) -> None:
    truncated = tmp_path / "truncated.gguf"
    with starter_model.open("rb") as source:
        truncated.write_bytes(source.read(5 * 1024 * 1024))
    result = await told(front_end, str(truncated), "my question")
    assert any("truncated.gguf" in message for message in result.messages), result.messages
    services = build_services(load_config())
    assert saved(services, result.conversation_id) == [
        ("user", "my question", None),
        ("assistant", "", "error"),
    ]
    failed = services.history.transcript(result.conversation_id or "")[1][-1]
    assert failed.error is not None and "truncated.gguf" in failed.error


@pytest.mark.parametrize("front_end", ["ask", "app"])
async def test_an_unknown_model_keeps_the_question(front_end: str, starter_model: Path) -> None:
    result = await told(front_end, "no-such-model", "hello")
    assert any("no local model matches" in message for message in result.messages)
    services = build_services(load_config())
    assert saved(services, result.conversation_id) == [
        ("user", "hello", None),
        ("assistant", "", "error"),
    ]


@pytest.mark.parametrize("front_end", ["ask", "app"])
async def test_a_prompt_cut_to_fit_is_a_warning(front_end: str, starter_model: Path) -> None:
    result = await told(front_end, STARTER, LONG_TEXT, {"TERMLLM_MODELS_CONTEXT_SIZE": "256"})
    assert any("the prompt was cut from" in message for message in result.messages), result.messages
    services = build_services(load_config())
    question, answer = saved(services, result.conversation_id)
    assert question == ("user", LONG_TEXT, None), "the history keeps the whole question"
    assert answer[0] == "assistant" and answer[2] in ("stop", "length")
