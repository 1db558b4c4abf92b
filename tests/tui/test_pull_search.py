"""The pull screen finds and fits models: a search of the fake Hub, a repo's files judged against
synthetic GPU, RAM and disk figures (as `termllm info owner/repo` judges them), the recommended
file pulled, and the questions and refusals before a file that will not fit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakehub import FakeHub
from textual.pilot import Pilot
from textual.widgets import Button, Input, OptionList, Static
from tui_support import SIZE, scripted_app, settle, wait_until

from termllm.engine import fit
from termllm.engine.hardware import Device, DeviceType
from termllm.hub import space
from termllm.tui.app import ChatApp
from termllm.tui.screens.confirm import ConfirmScreen
from termllm.tui.screens.models import ModelPicker
from termllm.tui.screens.pull import PullScreen
from termllm.tui.widgets.pull_tables import PullTable

pytestmark = pytest.mark.anyio

MB = 1000**2
MIB = 1024**2
GIB = 1024**3
REPO = "org/SmolLM2-135M-Instruct-GGUF"
OTHER = "other/SmolLM2-360M-GGUF"
BASE = "SmolLM2-135M-Instruct"
Q2 = f"{BASE}-Q2_K.gguf"
Q4 = f"{BASE}-Q4_K_M.gguf"  # the starter model under that name: the one real header
Q8 = f"Q8_0/{BASE}-Q8_0-00001-of-00002.gguf"
# Room on the GPU for Q2_K and Q4_K_M with the planner's 1 GiB margin, not for Q8_0.
SOME_ROOM = 1 * GIB + 300 * MIB


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def hub(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, starter_model: Path
) -> Iterator[FakeHub]:
    folder = tmp_path_factory.mktemp("quants")
    # Sparse files of the sizes a listing shows: only their sizes are read.
    small, part = folder / "q2.gguf", folder / "part.gguf"
    for path, size in ((small, 60 * MB), (part, 72 * MB)):
        with path.open("wb") as handle:
            handle.truncate(size)
    files: dict[str, bytes | Path] = {Q2: small, Q4: starter_model, "README.md": b"# x\n"}
    files[Q8] = files[Q8.replace("00001-of", "00002-of")] = part
    files[f"mmproj-{BASE}-f16.gguf"] = b"projector"
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        fake.add_repo(REPO, files)
        fake.set_stats(REPO, downloads=5000, likes=12, parameter_count=134_515_008)
        fake.add_repo(OTHER, {"SmolLM2-360M-Q8_0.gguf": b"x"}, gated=True)
        fake.set_stats(OTHER, downloads=900, likes=3)
        fake.add_repo("org/SmolLM2-135M", {"model.safetensors": b"not gguf"})
        fake.set_stats("org/SmolLM2-135M", downloads=10**6)
        yield fake


def use(monkeypatch: pytest.MonkeyPatch, ram: int, gpu_free: int | None, disk: int) -> None:
    """The machine every plan and pull check is judged against."""
    devices = (
        (Device("CUDA0", "NVIDIA Test", DeviceType.GPU, gpu_free, gpu_free),)
        if gpu_free is not None
        else ()
    )
    monkeypatch.setattr(fit, "read_machine", lambda: fit.Machine(devices, bool(devices), ram))
    monkeypatch.setattr(space, "free_disk_bytes", lambda _cache: disk)


async def open_pull(pilot: Pilot[None]) -> PullScreen:
    await settle(pilot)
    await pilot.press("f4")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, PullScreen)
    return screen


async def enter(pilot: Pilot[None], screen: PullScreen, text: str | None = None) -> None:
    """Enter in the field, after typing `text` into it; waits for what that started."""
    if text is not None:
        screen.query_one(Input).value = text
    await pilot.press("enter")
    await settle(pilot)


def rows(screen: PullScreen) -> list[tuple[str | None, str]]:
    """(id, text) of each row of the table."""
    options = screen.query_one(OptionList).options
    return [(option.id, str(option.prompt)) for option in options]


def highlighted(screen: PullScreen) -> str | None:
    options = screen.query_one(OptionList)
    assert options.highlighted is not None
    return options.get_option_at_index(options.highlighted).id


def shown(screen: PullScreen, selector: str) -> str:
    widget = screen.query_one(selector, Static)
    return str(widget.render()) if widget.display else ""


def full_downloads(hub: FakeHub) -> set[str]:
    """The files fetched whole (a header is read by ranges)."""
    commit = hub.repos[REPO].refs["main"]
    by_sha = {item.sha256: path for path, item in hub.repos[REPO].commits[commit].items()}
    gets = [r for r in hub.file_gets() if r.server == "cdn" and r.range is None]
    return {by_sha[r.path.rsplit("/", 1)[1]] for r in gets}


def same_bytes(first: Path, second: Path) -> bool:
    return first.read_bytes() == second.read_bytes()


def pulled(app: ChatApp, ref: str) -> bool:
    return any(f"pulled {ref}" in n.message for n in app._notifications)


async def test_search_choose_a_repo_and_enter_pulls_the_recommended_file(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch, starter_model: Path
) -> None:
    use(monkeypatch, ram=16 * GIB, gpu_free=SOME_ROOM, disk=100 * GIB)
    app, _ = scripted_app(["unused"])
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pull(pilot)
        await enter(pilot, screen, "smollm2")
        # GGUF repos only, most downloaded first, with their figures.
        assert [row_id for row_id, _ in rows(screen)] == [REPO, OTHER]
        head = shown(screen, "#pull-head").split()
        assert head == ["REPO", "PARAMS", "DOWNLOADS", "LIKES", "GATED"]
        assert rows(screen)[0][1].split()[1:] == ["135M", "5,000", "12", "no"]
        assert rows(screen)[1][1].split()[1:] == ["?", "900", "3", "yes"]
        assert "2 GGUF repos match smollm2" in shown(screen, "#pull-label")
        assert highlighted(screen) == REPO

        await enter(pilot, screen)  # the highlighted result
        assert screen.query_one(Input).value == REPO
        files = rows(screen)
        # Smallest first; the projector is no model; the split Q8_0 is one row of two parts.
        assert [row_id for row_id, _ in files] == [f"{REPO}/{name}" for name in (Q2, Q4, Q8)]
        assert shown(screen, "#pull-head").split() == [
            *("FILE", "QUANT", "SIZE", "MEMORY", "RUNS", "HERE"),
        ]
        by_id = dict(files)
        assert by_id[f"{REPO}/{Q2}"].endswith("all on the GPU")
        assert by_id[f"{REPO}/{Q8}"].endswith("layers on the GPU")
        # Long names lose their middle: the end tells the files of a repo apart.
        assert "00002.gguf (+1 parts)" in by_id[f"{REPO}/{Q8}"]
        # The recommendation: marked, and the row Enter would pull.
        assert by_id[f"{REPO}/{Q4}"].startswith("★ ")
        assert [text for _, text in files if text.startswith("★")] == [by_id[f"{REPO}/{Q4}"]]
        assert highlighted(screen) == f"{REPO}/{Q4}"
        note = shown(screen, "#pull-note")
        assert "At 4096 ctx; this machine: CUDA0 1.4 GB free, RAM 17.2 GB available" in note
        assert "★ Q4_K_M is recommended: the best quality that runs entirely on the GPU" in note

        await pilot.press("escape")  # back to the search
        await settle(pilot)
        assert app.screen is screen and screen.query_one(Input).value == "smollm2"
        assert [row_id for row_id, _ in rows(screen)] == [REPO, OTHER]
        await enter(pilot, screen)

        hub.clear_log()
        await pilot.press("enter")  # pulls the highlighted, recommended file
        await settle(pilot)
        await wait_until(pilot, lambda: pulled(app, f"{REPO}:Q4_K_M"))
        assert not isinstance(app.screen, PullScreen)
        assert full_downloads(hub) == {Q4}
        [model] = [m for m in app.services.models.list_models() if m.repo_id == REPO]
        assert same_bytes(model.path, starter_model)
        await pilot.press("f3")
        await settle(pilot)
        assert isinstance(app.screen, ModelPicker)
        assert f"{REPO}:Q4_K_M" in [o.id for o in app.screen.query_one(OptionList).options]


async def test_a_file_that_will_not_fit_in_ram_is_asked_about_and_cancel_pulls_nothing(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No GPU, and RAM for Q2_K (without the margin) only.
    use(monkeypatch, ram=300 * MB, gpu_free=None, disk=100 * GIB)
    app, _ = scripted_app(["unused"])
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pull(pilot)
        await enter(pilot, screen, REPO)  # a repo typed directly lists its files too
        by_id = dict(rows(screen))
        assert by_id[f"{REPO}/{Q4}"].endswith("does not fit: RAM")
        assert highlighted(screen) == f"{REPO}/{Q2}"  # the best that fits at all
        await pilot.press("down")
        assert highlighted(screen) == f"{REPO}/{Q4}"

        hub.clear_log()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = str(app.screen.query_one("#question", Static).render())
        assert f"{REPO}:Q4_K_M (98.4 MB) will not fit in this machine's memory" in question
        assert "does not fit: RAM" in question and f"{REPO}:Q2_K would (60.0 MB" in question
        assert "This machine: no GPU, RAM 300.0 MB available" in question
        assert question.endswith("Pull it anyway?")
        assert app.screen.focused is not None and app.screen.focused.id == "cancel"
        await pilot.press("enter")  # the safe answer has the focus
        await settle(pilot)
        assert app.screen is screen
        assert "nothing downloaded" in shown(screen, "#pull-label")
        assert shown(screen, "#pull-error") == ""
        assert not screen.query_one(Input).disabled
        assert full_downloads(hub) == set()
        assert not [m for m in app.services.models.list_models() if m.repo_id == REPO]

        # Asked again, "Pull anyway" pulls it.
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("right")
        focused = app.screen.focused
        assert isinstance(focused, Button) and focused.id == "confirm"
        await pilot.press("enter")
        await settle(pilot)
        await wait_until(pilot, lambda: pulled(app, f"{REPO}:Q4_K_M"))
        assert full_downloads(hub) == {Q4}


async def test_a_file_that_will_not_fit_on_the_disk_is_refused_with_the_sizes(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, ram=16 * GIB, gpu_free=None, disk=50 * MB)
    app, _ = scripted_app(["unused"])
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pull(pilot)
        await enter(pilot, screen, REPO)
        assert all(text.endswith("does not fit: disk") for _, text in rows(screen))
        assert "Recommended: none: no file fits this machine" in shown(screen, "#pull-note")
        hub.clear_log()
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        error = shown(screen, "#pull-error")
        assert error.startswith(f"Pull failed: {REPO}:Q2_K needs 60.0 MB more on disk")
        assert "50.0 MB free: nothing downloaded" in error and "\n" not in error
        assert hub.file_gets() == []


async def test_the_hub_out_of_reach_is_one_line_on_the_screen() -> None:
    app, _ = scripted_app(["unused"])
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pull(pilot)
        await enter(pilot, screen, "qwen3")
        error = shown(screen, "#pull-error")
        assert error.startswith("Search failed: cannot reach the Hub") and "\n" not in error
        assert not screen.query_one(PullTable).display
        await enter(pilot, screen, REPO)
        error = shown(screen, "#pull-error")
        assert error.startswith("Could not list the files: cannot reach the Hub")
        assert "\n" not in error
        await enter(pilot, screen, "qwen3:q4")
        assert "a quant or revision needs a repo" in shown(screen, "#pull-error")


async def test_a_repo_the_hub_names_twice_or_with_escape_codes_is_one_safe_row(
    hub: FakeHub,
) -> None:
    hub.edit_search = lambda entries: [*entries, *entries, {"id": "evil/\x1b[2Jname\nfake"}]
    app, _ = scripted_app(["unused"])
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pull(pilot)
        await enter(pilot, screen, "smollm2")
        ids = [row_id for row_id, _ in rows(screen)]
        assert ids[:2] == [REPO, OTHER] and len(ids) == 3
        assert all("\x1b" not in text and "\n" not in text for _, text in rows(screen))
        await pilot.press("up", "enter")  # the last row: not a repo name termllm can use
        await settle(pilot)
        assert "is not a model reference" in shown(screen, "#pull-error")


@pytest.mark.parametrize("view", ["results", "files"])
def test_the_pull_screen(
    view: str, snap_compare: Any, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, ram=16 * GIB, gpu_free=SOME_ROOM, disk=100 * GIB)
    app, _ = scripted_app(["unused"])

    async def search(pilot: Pilot[None]) -> None:
        screen = await open_pull(pilot)
        # A blinking cursor is on or off depending on when the picture is taken.
        screen.query_one(Input).cursor_blink = False
        await enter(pilot, screen, "smollm2")
        if view == "files":
            await enter(pilot, screen)

    assert snap_compare(app, terminal_size=SIZE, run_before=search)
