"""Pulling inside the app (F4) by a reference with its quant, which pulls at once, against the
fake Hub: progress, cancel and resume, errors. Searching and a repo's files: test_pull_search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakehub import FakeHub
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, ProgressBar, Static
from tui_support import SIZE, scripted_services, settle, wait_until

from termllm.config import load_config
from termllm.tui.app import ChatApp
from termllm.tui.screens.models import ModelPicker
from termllm.tui.screens.pull import PullScreen

pytestmark = pytest.mark.anyio

STARTER_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
STARTER_FILE = "smollm2-135m-instruct-q4_1.gguf"
PULLED_REF = f"{STARTER_REPO}:Q4_1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, starter_model: Path) -> Iterator[FakeHub]:
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        fake.add_repo(STARTER_REPO, {STARTER_FILE: starter_model, "README.md": b"# SmolLM2\n"})
        yield fake


def build() -> ChatApp:
    services, _ = scripted_services(["ok"])
    return ChatApp(services)


async def start_pull(pilot: Pilot[None], ref: str) -> PullScreen:
    await settle(pilot)
    await pilot.press("f4")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, PullScreen)
    screen.query_one(Input).value = ref
    await pilot.press("enter")
    return screen


def pulled_notified(app: ChatApp) -> bool:
    return any(f"pulled {PULLED_REF}" in n.message for n in app._notifications)


def error_text(screen: PullScreen) -> str | None:
    """The error the dialog shows, or None when it shows none."""
    error = screen.query_one("#pull-error", Static)
    return str(error.render()) if error.display else None


def bar_at_rest(screen: PullScreen) -> bool:
    """Hidden, and with a total: a bar without one animates even while hidden."""
    bar = screen.query_one(ProgressBar)
    return not bar.display and bar.percentage is not None


def same_bytes(first: Path, second: Path) -> bool:
    return first.read_bytes() == second.read_bytes()


def file_size(path: Path) -> int:
    return path.stat().st_size


def partial_bytes() -> int:
    cache = load_config().paths.hub_cache
    return sum(path.stat().st_size for path in cache.glob("models--*/blobs/*.incomplete"))


async def test_a_pull_shows_progress_and_the_model_appears_in_the_picker(
    hub: FakeHub, starter_model: Path
) -> None:
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        await start_pull(pilot, PULLED_REF)
        await settle(pilot)
        await wait_until(pilot, lambda: pulled_notified(app))
        assert not isinstance(app.screen, PullScreen)
        [pulled] = [m for m in app.services.models.list_models() if m.ref == PULLED_REF]
        assert same_bytes(pulled.path, starter_model)
        await pilot.press("f3")
        await settle(pilot)
        assert isinstance(app.screen, ModelPicker)
        refs = [option.id for option in app.screen.query_one(OptionList).options]
        assert PULLED_REF in refs


async def test_escape_stops_the_download_and_a_second_pull_resumes_it(
    hub: FakeHub, starter_model: Path
) -> None:
    hub.delay_per_chunk = 0.005
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_pull(pilot, PULLED_REF)
        label, bar = screen.query_one("#pull-label", Static), screen.query_one(ProgressBar)
        while " of " not in str(label.render()) or partial_bytes() < 2_000_000:
            await pilot.pause(0.05)
        assert str(label.render()).startswith(f"{STARTER_FILE}: ")
        assert bar.total == file_size(starter_model) and bar.progress > 0
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, PullScreen)
        assert any(n.title == "Pull cancelled" for n in app._notifications)
        kept = partial_bytes()
        assert kept >= 2_000_000
        await pilot.pause(0.3)
        assert partial_bytes() == kept, "the download stopped"

        hub.delay_per_chunk = 0.0
        hub.clear_log()
        await start_pull(pilot, PULLED_REF)
        await settle(pilot)
        await wait_until(pilot, lambda: pulled_notified(app))
        ranges = [r.range for r in hub.file_gets() if r.server == "cdn"]
        assert ranges and ranges[0] is not None and ranges[0].startswith(f"bytes={kept}-")


async def test_before_a_pull_the_dialog_shows_no_progress_and_no_error() -> None:
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f4")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PullScreen)
        assert bar_at_rest(screen)
        assert error_text(screen) is None


@pytest.mark.parametrize(
    ("ref", "message"),
    [("acme/no-such-repo:Q4_K_M", "no-such-repo"), ("./not-a-hub-ref.gguf", "not a Hub reference")],
)
async def test_a_failed_pull_shows_its_error_in_the_dialog_which_stays(
    hub: FakeHub, ref: str, message: str
) -> None:
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_pull(pilot, ref)
        await settle(pilot)
        assert app.screen is screen
        shown = error_text(screen)
        assert shown is not None and message in shown and "\n" not in shown
        assert bar_at_rest(screen)
        assert not screen.query_one(Input).disabled
        assert not any(n.severity == "error" for n in app._notifications), "said once, on screen"


async def test_the_error_stays_until_the_next_attempt_which_shows_progress(
    hub: FakeHub,
) -> None:
    hub.delay_per_chunk = 0.005
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_pull(pilot, "acme/no-such-repo:Q4_K_M")
        await settle(pilot)
        assert error_text(screen) is not None
        await pilot.pause(0.2)
        assert error_text(screen) is not None
        screen.query_one(Input).value = PULLED_REF
        await pilot.press("enter")
        assert error_text(screen) is None
        await wait_until(pilot, lambda: screen.query_one(ProgressBar).display)
        bar = screen.query_one(ProgressBar)
        assert bar.total is not None and bar.total > 1
        await pilot.press("escape")
        await settle(pilot)


async def test_the_hub_out_of_reach_is_said_in_the_dialog_with_no_progress() -> None:
    app = build()
    async with app.run_test(size=SIZE) as pilot:
        screen = await start_pull(pilot, PULLED_REF)
        await settle(pilot)
        assert app.screen is screen
        shown = error_text(screen)
        assert shown is not None and shown.startswith("Pull failed: ")
        assert bar_at_rest(screen)
