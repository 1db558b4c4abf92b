"""Built-in and user themes load as valid Textual themes; broken user themes become problems."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.color import Color
from textual.theme import Theme
from textual.widgets import Markdown

from termllm.tui.themes import (
    CODE_BACKGROUND,
    CODE_FOREGROUND,
    CODE_VARIABLE_DEFAULTS,
    ThemeSet,
    builtin_themes_dir,
    load_themes,
)

BUILTIN_NAMES = ("termllm-dark", "termllm-light", "termllm-high-contrast")


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_themes_load_without_problems(tmp_path: Path) -> None:
    theme_set = load_themes(tmp_path / "no-such-dir")

    assert theme_set.problems == []
    assert set(BUILTIN_NAMES) <= set(theme_set.themes)
    assert len(theme_set.themes) == len(list(builtin_themes_dir().glob("*.toml")))
    for name, theme in theme_set.themes.items():
        assert isinstance(theme, Theme)
        assert theme.name == name
        theme.to_color_system().generate()
        # Ours set the code-block colours explicitly rather than relying on the defaults.
        Color.parse(theme.variables[CODE_BACKGROUND])
        Color.parse(theme.variables[CODE_FOREGROUND])


def test_light_is_light_and_high_contrast_is_black_and_white(tmp_path: Path) -> None:
    themes = load_themes(tmp_path).themes

    assert themes["termllm-dark"].dark is True
    assert themes["termllm-light"].dark is False
    contrast = themes["termllm-high-contrast"]
    assert Color.parse(contrast.background or "") == Color(0, 0, 0)
    assert Color.parse(contrast.foreground or "") == Color(255, 255, 255)
    assert contrast.text_alpha == 1.0


def test_user_theme_extends_and_overrides(tmp_path: Path) -> None:
    write(tmp_path, "mine.toml", 'name = "mine"\nprimary = "#ff0000"\ndark = false\n')
    write(tmp_path, "dark.toml", 'name = "termllm-dark"\nprimary = "rgb(1, 2, 3)"\n')

    theme_set = load_themes(tmp_path)

    assert theme_set.problems == []
    assert theme_set.themes["mine"].dark is False
    assert theme_set.themes["termllm-dark"].primary == "rgb(1, 2, 3)"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('name = "x"\nprimary = \n', "bad.toml: not valid TOML"),
        (
            'name = "x"\nprimary = "#fff"\nprimery = "#000"\n',
            "bad.toml: line 3: 'primery' is not a theme field",
        ),
        ('name = "x"\nprimary = "#ff00zz"\n', "bad.toml: line 2: 'primary': '#ff00zz' is not a"),
        ('name = "x"\nprimary = "#fff"\ndark = "yes"\n', "bad.toml: line 3: 'dark' must be bool"),
        ('name = "x"\nprimary = 12\n', "bad.toml: line 2: 'primary' must be str"),
        ('name = "x"\nprimary = "#fff"\ntext_alpha = true\n', "bad.toml: line 3: 'text_alpha'"),
        ('primary = "#fff"\n', "bad.toml: missing required field 'name'"),
        ('name = "x"\n', "bad.toml: missing required field 'primary'"),
        ('name = " "\nprimary = "#fff"\n', "bad.toml: line 1: 'name' must not be empty"),
        (
            'name = "x"\nprimary = "#fff"\n[variables]\ncode-background = 3\n',
            "bad.toml: line 4: variable 'code-background' must be str",
        ),
        (
            'name = "x"\nprimary = "#fff"\n[variables]\ncode-foreground = "nope"\n',
            "bad.toml: line 4: 'code-foreground': 'nope' is not a colour",
        ),
    ],
)
def test_broken_user_theme_is_skipped_with_one_line_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    write(tmp_path, "bad.toml", text)
    write(tmp_path, "good.toml", 'name = "good"\nprimary = "#00ff00"\n')

    theme_set = load_themes(tmp_path)

    assert len(theme_set.problems) == 1
    assert theme_set.problems[0].startswith(problem)
    assert "\n" not in theme_set.problems[0]
    assert "x" not in theme_set.themes
    assert "good" in theme_set.themes


def test_unreadable_theme_file_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00")

    theme_set = load_themes(tmp_path)

    assert theme_set.problems[0].startswith("binary.toml: cannot read")


class ThemeHost(App[None]):
    # The rule the app's stylesheet uses, so every theme must define both variables.
    CSS = "MarkdownFence { background: $code-background; color: $code-foreground; }"

    def __init__(self, theme_set: ThemeSet) -> None:
        super().__init__()
        self.theme_set = theme_set

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return CODE_VARIABLE_DEFAULTS

    def compose(self) -> ComposeResult:
        yield Markdown("# Title\n\n```python\ndef f(x: int) -> int:\n    return x + 1\n```\n")

    def on_mount(self) -> None:
        for theme in self.theme_set.themes.values():
            self.register_theme(theme)


def test_app_switches_to_every_theme(tmp_path: Path) -> None:
    # "mine" and Textual's own themes say nothing about code blocks, so the defaults apply.
    write(tmp_path, "mine.toml", 'name = "mine"\nprimary = "#ff0000"\n')
    theme_set = load_themes(tmp_path)
    app = ThemeHost(theme_set)
    applied: dict[str, str] = {}

    async def switch_to_each() -> None:
        async with app.run_test() as pilot:
            for name in [*theme_set.themes, "textual-light", "nord"]:
                app.theme = name
                await pilot.pause()
                assert app.current_theme.name == name
                applied[name] = app.get_css_variables()[CODE_BACKGROUND]

    asyncio.run(switch_to_each())

    expected = {
        name: theme.variables.get(CODE_BACKGROUND) for name, theme in theme_set.themes.items()
    }
    expected["mine"] = expected["textual-light"] = expected["nord"] = CODE_VARIABLE_DEFAULTS[
        CODE_BACKGROUND
    ]
    assert applied == expected
