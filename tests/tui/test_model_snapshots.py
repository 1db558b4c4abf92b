"""Snapshots of the model picker and the settings form, over a scripted engine."""

from __future__ import annotations

from typing import Any

import pytest
from model_dialogs import STARTER_REF, add_tiny_model
from textual.pilot import Pilot
from tui_support import SIZE, scripted_app, settle


def test_the_model_picker(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERMLLM_MODELS_DEFAULT", STARTER_REF)
    add_tiny_model()
    app, _ = scripted_app(["unused"])

    async def open_picker(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_picker)


def test_the_settings_form(snap_compare: Any) -> None:
    app, _ = scripted_app(["unused"])

    async def open_settings(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await pilot.press("f5")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=open_settings)
