"""The one factory that builds termllm's services, used by the CLI, the TUI and tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from termllm.config import Config, load_config
from termllm.services.chat import ChatService
from termllm.services.doctor import DoctorService
from termllm.services.history import HistoryService
from termllm.services.model_slot import ModelSlot
from termllm.services.models import ModelService
from termllm.services.preferences import PreferencesService
from termllm.services.servers import ServerService
from termllm.services.side_writes import SideWrites
from termllm.services.state_cache import ConversationStates
from termllm.services.turn import TurnService

if TYPE_CHECKING:
    from termllm.engine.base import Engine
    from termllm.hub.client import HubClient


@dataclass(frozen=True)
class Services:
    config: Config
    models: ModelService
    chat: ChatService
    history: HistoryService
    turns: TurnService
    """Answering: `ask` and the chat app both run their turns here."""
    doctor: DoctorService
    preferences: PreferencesService
    servers: ServerService


def build_services(
    config: Config,
    engine_factory: Callable[[], Engine] | None = None,
    env: Mapping[str, str] | None = None,
) -> Services:
    """Everything the interfaces use; tests may pass a scripted engine instead of llama.cpp.
    `env` holds the servers' API keys (the process's environment unless given)."""
    # One per process: a file that cannot be written is warned about once.
    side_writes = SideWrites()
    models = ModelService(config, hub_factory=lambda: _hub_client(config), side_writes=side_writes)
    states = ConversationStates(config, side_writes)
    servers = ServerService(config, os.environ if env is None else env)
    chat = ChatService(
        config, models, engine_factory or _llama_engine, states, side_writes, servers
    )
    history = HistoryService(config, states)
    return Services(
        config=config,
        models=models,
        chat=chat,
        history=history,
        turns=TurnService(chat, history, ModelSlot(chat)),
        doctor=DoctorService(config, models),
        preferences=PreferencesService(config),
        servers=servers,
    )


def load_services(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Services:
    env = os.environ if env is None else env
    return build_services(load_config(env, overrides), env=env)


def _llama_engine() -> Engine:
    # Imported here: llama_cpp loads native libraries, which only inference needs.
    from termllm.engine.llama_backend import LlamaEngine

    return LlamaEngine()


def _hub_client(config: Config) -> HubClient:
    # Imported here: huggingface_hub takes a noticeable time to import, and most commands never
    # talk to the Hub.
    from termllm.hub.client import HubClient

    hub = config.settings.hub
    return HubClient(
        endpoint=config.hub_endpoint,
        cache_dir=config.paths.hub_cache,
        token=None,
        offline=hub.offline,
        timeout_s=hub.timeout_s,
    )
