"""Hub test fixtures: a fake Hub on loopback, a client pointed at it, a progress recorder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fakehub import FakeHub, RecordingProgress

from termllm.hub.client import HubClient

ClientFactory = Callable[..., HubClient]


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    with FakeHub() as hub:
        yield hub


@pytest.fixture
def hub_cache(tmp_path: Path) -> Path:
    return tmp_path / "hub-cache"


@pytest.fixture
def make_client(fake_hub: FakeHub, hub_cache: Path) -> ClientFactory:
    """HubClient against the fake Hub; keyword arguments override endpoint, token, offline…"""

    def make(**overrides: object) -> HubClient:
        settings: dict[str, object] = {
            "endpoint": fake_hub.url,
            "cache_dir": hub_cache,
            "token": None,
            "offline": False,
            "timeout_s": 5.0,
        }
        settings.update(overrides)
        return HubClient(**settings)  # type: ignore[arg-type]

    return make


@pytest.fixture
def hub_client(make_client: ClientFactory) -> HubClient:
    return make_client()


@pytest.fixture
def progress() -> RecordingProgress:
    return RecordingProgress()
