"""The chat app with a model of a real OpenAI-compatible server (llama-cpp-python's, on
127.0.0.1 with the starter model): listed in the picker, picked, streamed, saved, continued."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai_server import MODEL_ALIAS, free_port, server_url, write_servers
from textual.widgets import OptionList
from tui_support import SIZE, saved, settle, shown, submit, wait_until

from termllm.app import build_services
from termllm.config import load_config
from termllm.tui.app import ChatApp
from termllm.tui.screens.models import ModelPicker
from termllm.tui.widgets.status import StatusBar

__all__ = ["server_url"]  # the fixture, used by name

REF = f"@srv/{MODEL_ALIAS}"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_server_model_is_picked_streamed_saved_and_continued(
    isolated_env: Path, server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_servers(isolated_env, {"srv": server_url, "down": f"http://127.0.0.1:{free_port()}/v1"})
    monkeypatch.setenv("TERMLLM_GENERATION_TEMPERATURE", "0")
    monkeypatch.setenv("TERMLLM_GENERATION_MAX_TOKENS", "12")
    services = build_services(load_config())
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        assert isinstance(app.screen, ModelPicker)
        options = app.screen.query_one(OptionList).options
        assert REF in [option.id for option in options]
        unreachable = [str(o.prompt) for o in options if "unreachable" in str(o.prompt)]
        assert unreachable and all(o.disabled for o in options if "unreachable" in str(o.prompt))
        await pilot.press(*"srv")
        await pilot.press("enter")
        await settle(pilot)

        def ready() -> bool:
            status = app.query_one(StatusBar).info
            return status.model == REF and not status.loading

        await wait_until(pilot, ready)
        status = app.query_one(StatusBar).info
        assert status.placement == "server srv" and status.remote
        await submit(pilot, "Say hi")
        await wait_until(pilot, lambda: len(saved(services, app.conversation_id)) == 2)
        (_, question, _), (role, answer, reason) = saved(services, app.conversation_id)
        assert (question, role, reason in {"stop", "length"}) == ("Say hi", "assistant", True)
        assert answer.strip() and shown(app)[-1] == ("assistant", answer)
        # The server reports no usage in a stream: the meter says so instead of guessing.
        assert "ctx unknown" in str(app.query_one(StatusBar).render())
        await submit(pilot, "Again")
        await wait_until(pilot, lambda: len(saved(services, app.conversation_id)) == 4)
        assert services.history.find(app.conversation_id or "").model == REF
        assert not [n for n in app._notifications if n.severity == "error"]
    services.history.close()
