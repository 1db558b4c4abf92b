"""Guards on the private Textual API termllm relies on where no public one does the job.

`AnswerView` (termllm/tui/widgets/answer.py) overrides `Widget._size_updated` to pass
`layout=False`: a growing answer then skips the second layout per frame that Textual would do for
its scrollbars. A Textual upgrade may rename the method, change its parameters or stop calling
it, and the override would silently stop working (or break); these tests say so first.
"""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version

import pytest
from textual.app import App, ComposeResult
from textual.geometry import Size
from textual.widget import Widget

from termllm.tui.themes import CODE_VARIABLE_DEFAULTS
from termllm.tui.widgets.answer import AnswerView

Parameters = list[tuple[str, inspect._ParameterKind, object]]

_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
_NONE = inspect.Parameter.empty
# Widget._size_updated(self, size, virtual_size, container_size, layout=True) -> bool, as of
# Textual 8.2.
EXPECTED: Parameters = [
    ("self", _POSITIONAL, _NONE),
    ("size", _POSITIONAL, _NONE),
    ("virtual_size", _POSITIONAL, _NONE),
    ("container_size", _POSITIONAL, _NONE),
    ("layout", _POSITIONAL, True),
]


def _changed(what: str) -> str:
    return (
        f"Textual {version('textual')} {what}. AnswerView._size_updated in "
        "termllm/tui/widgets/answer.py overrides that private method to skip a layout per "
        "streamed frame: port the override to the new Textual code (or drop it and this "
        "guard) before accepting the upgrade."
    )


def _parameters(function: object) -> Parameters:
    assert callable(function)
    return [
        (parameter.name, parameter.kind, parameter.default)
        for parameter in inspect.signature(function).parameters.values()
    ]


def test_widget_size_updated_keeps_the_name_and_signature_answer_view_overrides() -> None:
    base = getattr(Widget, "_size_updated", None)
    assert base is not None, _changed("has no Widget._size_updated any more")
    assert _parameters(base) == EXPECTED, _changed(
        f"changed the signature of Widget._size_updated to {inspect.signature(base)}"
    )
    assert "_size_updated" in vars(AnswerView), (
        "AnswerView no longer overrides _size_updated: delete this guard with the override"
    )
    assert _parameters(AnswerView._size_updated) == EXPECTED, (
        "AnswerView._size_updated no longer matches Widget._size_updated's signature"
    )


class AnswerHost(App[None]):
    def get_theme_variable_defaults(self) -> dict[str, str]:
        return CODE_VARIABLE_DEFAULTS  # as ChatApp does

    def compose(self) -> ComposeResult:
        yield AnswerView("# Hello\n\nA first paragraph.\n\nA second one.", "stop")


def test_textual_still_calls_it_when_it_lays_an_answer_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = Widget._size_updated
    received: list[bool] = []

    def spy(
        self: Widget, size: Size, virtual_size: Size, container_size: Size, layout: bool = True
    ) -> bool:
        if isinstance(self, AnswerView):
            received.append(layout)
        return original(self, size, virtual_size, container_size, layout)

    monkeypatch.setattr(Widget, "_size_updated", spy)

    async def lay_out() -> None:
        async with AnswerHost().run_test(size=(60, 20)) as pilot:
            await pilot.pause()

    asyncio.run(lay_out())

    assert received, _changed("laid an answer out without calling Widget._size_updated")
    assert not any(received), "AnswerView's override no longer passes layout=False"
