"""Building the chat app over a scripted engine, for fast and deterministic TUI tests."""

from __future__ import annotations

from collections.abc import Sequence

from fake_engine import ScriptedEngine, ScriptedModel

from termllm.app import Services, build_services
from termllm.config import load_config
from termllm.tui.app import ChatApp

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
