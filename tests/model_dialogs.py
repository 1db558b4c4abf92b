"""A second model on disk for picker tests, and driving the app's dialogs."""

from __future__ import annotations

from cache_builder import add_cached_repo
from textual.pilot import Pilot
from textual.widgets import Input

from termllm.config import load_config

STARTER_REF = "SmolLM2-135M-Instruct.Q4_1"
TINY_REPO = "acme/Tiny-GGUF"
TINY_REF = f"{TINY_REPO}:Q8_0"


def add_tiny_model() -> str:
    """A second model in the Hub cache: not a real GGUF, which the scripted engine never reads
    (and the picker shows as unreadable facts)."""
    add_cached_repo(load_config().paths.hub_cache, TINY_REPO, {"tiny-Q8_0.gguf": b"GGUF tiny"})
    return TINY_REF


def fill(pilot: Pilot[None], selector: str, value: str) -> None:
    pilot.app.screen.query_one(selector, Input).value = value
