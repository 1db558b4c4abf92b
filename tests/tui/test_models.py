"""The model picker (F3): switching the conversation's model, persisting it, failing safely."""

from __future__ import annotations

import pytest
from fake_engine import ScriptedEngine, ScriptedModel
from model_dialogs import STARTER_REF, TINY_REF, add_tiny_model
from textual.widgets import OptionList
from tui_support import SIZE, notices, scripted_services, settle, submit, wait_until

from termllm.app import build_services
from termllm.config import load_config
from termllm.engine.base import LoadedModel, LoadRequest
from termllm.errors import ModelLoadError
from termllm.tui.app import ChatApp
from termllm.tui.screens.models import ModelPicker
from termllm.tui.screens.pull import PullScreen
from termllm.tui.widgets.sidebar import ConversationList
from termllm.tui.widgets.status import StatusBar

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def two_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERMLLM_MODELS_DEFAULT", STARTER_REF)
    add_tiny_model()


class PickyEngine(ScriptedEngine):
    """Loads anything but the tiny model, which fails like a corrupt file."""

    def load(self, request: LoadRequest) -> LoadedModel:
        if "tiny" in request.model_path.name:
            raise ModelLoadError("tiny-Q8_0.gguf: scripted load failure")
        return super().load(request)


def build(engine: ScriptedEngine) -> ChatApp:
    return ChatApp(build_services(load_config(), engine_factory=lambda: engine))


def ready(app: ChatApp, ref: str) -> bool:
    status = app.query_one(StatusBar).info
    return status.model == ref and not status.loading and status.placement == "CPU"


def picker_refs(app: ChatApp) -> list[str]:
    options = app.screen.query_one(OptionList).options
    return [option.id for option in options if option.id is not None]


async def test_picking_a_model_switches_saves_and_loads_it() -> None:
    engine = ScriptedEngine(ScriptedModel(["ok"]))
    app = build(engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit(pilot, "Hi")
        await pilot.pause()
        cid = app.conversation_id
        assert cid is not None
        await pilot.press("f3")
        await settle(pilot)
        assert isinstance(app.screen, ModelPicker)
        assert sorted(picker_refs(app)) == [STARTER_REF, TINY_REF]
        await pilot.press("t", "i", "n", "y")
        assert picker_refs(app) == [TINY_REF]
        await pilot.press("enter")
        await settle(pilot)
        await wait_until(pilot, lambda: ready(app, TINY_REF))
        assert not isinstance(app.screen, ModelPicker)
        assert app.services.history.find(cid).model == TINY_REF
        assert engine.requests[-1].model_path.name == "tiny-Q8_0.gguf"
        status = app.query_one(StatusBar).info
        assert (status.model, status.loading, status.placement) == (TINY_REF, False, "CPU")
        await submit(pilot, "And now?")
        _, records = app.services.history.transcript(cid)
        assert records[-1].model == TINY_REF
        assert len(engine.requests) == 2, "no reload for a model already loaded"


async def test_each_conversation_shows_and_keeps_its_own_model() -> None:
    engine = ScriptedEngine(ScriptedModel(["ok"]))
    app = build(engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit(pilot, "First")
        first = app.conversation_id
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("t", "i", "n", "y", "enter")
        await settle(pilot)
        await wait_until(pilot, lambda: ready(app, TINY_REF))
        await pilot.press("ctrl+n")
        await settle(pilot)
        # A new conversation starts on the model picked last (as the draft's model).
        assert app.query_one(StatusBar).info.model == TINY_REF
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("s", "m", "o", "l", "enter")
        await settle(pilot)
        await wait_until(pilot, lambda: ready(app, STARTER_REF))
        await submit(pilot, "Second")
        second = app.conversation_id
        assert app.services.history.find(second or "").model == STARTER_REF
        sidebar = app.query_one(ConversationList)
        sidebar.focus()
        sidebar.highlighted = [option.id for option in sidebar.options].index(first)
        await pilot.press("enter")
        await settle(pilot)
        assert app.conversation_id == first
        status = app.query_one(StatusBar).info
        # Shown, but loaded only when a message needs it.
        assert (status.model, status.placement) == (TINY_REF, "")
        await submit(pilot, "Back")
        assert engine.requests[-1].model_path.name == "tiny-Q8_0.gguf"
    again = ChatApp(app.services, conversation_id=first)
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert again.query_one(StatusBar).info.model == TINY_REF


async def test_a_model_that_fails_to_load_leaves_the_previous_one_in_use() -> None:
    engine = PickyEngine(ScriptedModel(["still here"]))
    app = build(engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit(pilot, "Hi")
        cid = app.conversation_id or ""
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("t", "i", "n", "y", "enter")
        await settle(pilot)
        await wait_until(
            pilot, lambda: any("scripted load failure" in n.message for n in app._notifications)
        )
        await settle(pilot)
        assert app.services.history.find(cid).model == STARTER_REF
        assert app.query_one(StatusBar).info.model == STARTER_REF
        loads = len(engine.requests)
        await submit(pilot, "Are you there?")
        _, records = app.services.history.transcript(cid)
        assert (records[-1].content, records[-1].model) == ("still here", STARTER_REF)
        assert len(engine.requests) == loads, "the previous model was still loaded"


async def test_escape_closes_the_picker_and_changes_nothing() -> None:
    engine = ScriptedEngine(ScriptedModel(["ok"]))
    app = build(engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("down", "escape")
        await settle(pilot)
        assert not isinstance(app.screen, ModelPicker)
        assert app.session.draft_model is None
        assert app.query_one(StatusBar).info.model == STARTER_REF


@pytest.mark.parametrize(("keymap", "key"), [("", "f4"), ("pull_model=f6", "f6")])
async def test_the_pull_key_in_the_picker_opens_the_pull_screen_instead(
    monkeypatch: pytest.MonkeyPatch, keymap: str, key: str
) -> None:
    monkeypatch.setenv("TERMLLM_TUI_KEYMAP", keymap)
    app = build(ScriptedEngine(ScriptedModel(["ok"])))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        assert isinstance(app.screen, ModelPicker)
        box = app.screen.query_one("#picker-box")
        assert box.border_subtitle == f"Enter picks · Esc closes · {key.upper()} pulls"
        await pilot.press(key)
        await settle(pilot)
        assert isinstance(app.screen, PullScreen)
        assert not any(isinstance(screen, ModelPicker) for screen in app.screen_stack)
        assert app.session.draft_model is None, "pulling instead picks no model"
        await pilot.press("escape")
        await settle(pilot)
        assert len(app.screen_stack) == 1


async def test_the_model_actions_are_in_the_command_palette() -> None:
    app = build(ScriptedEngine(ScriptedModel(["ok"])))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert {"Pick a model", "Pull a model", "Conversation settings"} <= set(titles)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Pick a model", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ModelPicker)


async def test_a_saved_model_naming_a_file_is_never_opened() -> None:
    services, _ = scripted_services(["ok"])
    conversation = services.history.store.create_conversation(
        "Planted", "../../../../etc/passwd", None, {}
    )
    app = ChatApp(services, conversation_id=conversation.id)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        said = " ".join(notices(app))
        assert "this conversation's model '../../../../etc/passwd' cannot be used" in said
        assert "root:" not in said
