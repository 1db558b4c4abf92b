"""Themes as data files: the built-in ones in `themes/`, the user's in `<config dir>/themes/`.

A broken user theme never stops the app: it is skipped and described in one line, so the app can
show it as a notification.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

# Markdown code blocks in Textual 8 colour their tokens from the theme's own colours; these two
# extra variables let app.tcss give the block itself a themed background and text colour
# (Textual hard-codes light grey text there). The defaults cover themes that do not set them;
# the app returns them from `App.get_theme_variable_defaults`.
CODE_BACKGROUND = "code-background"
CODE_FOREGROUND = "code-foreground"
CODE_VARIABLE_DEFAULTS = {CODE_BACKGROUND: "black 10%", CODE_FOREGROUND: "auto 90%"}

_COLOR_KEYS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "success",
    "warning",
    "error",
)
_REQUIRED_KEYS = ("name", "primary")
_KEY_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(_COLOR_KEYS, (str,)),
    "name": (str,),
    "dark": (bool,),
    "ansi": (bool,),
    "luminosity_spread": (int, float),
    "text_alpha": (int, float),
    "variables": (dict,),
}


@dataclass
class ThemeSet:
    """Every usable theme by name, and one line per theme file that could not be used."""

    themes: dict[str, Theme] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class ThemeFileError(Exception):
    """One problem with one theme file; caught inside this module, never raised to callers."""


def builtin_themes_dir() -> Path:
    """The shipped themes: `termllm/themes` in a wheel, `themes/` at the root of a checkout."""
    package_dir = Path(__file__).resolve().parents[1]
    installed = package_dir / "themes"
    return installed if installed.is_dir() else package_dir.parent / "themes"


def load_themes(user_dir: Path) -> ThemeSet:
    """The built-in themes, then the user's `*.toml` files (which may override a built-in)."""
    theme_set = ThemeSet()
    for directory in (builtin_themes_dir(), user_dir):
        for path in _theme_files(directory, theme_set.problems):
            try:
                theme = load_theme_file(path)
            except ThemeFileError as error:
                theme_set.problems.append(f"{path.name}: {error}")
            else:
                theme_set.themes[theme.name] = theme
    return theme_set


def _theme_files(directory: Path, problems: list[str]) -> list[Path]:
    try:
        return sorted(directory.glob("*.toml"))
    except OSError as error:
        problems.append(f"{directory}: cannot list themes ({error.strerror or error})")
        return []


def load_theme_file(path: Path) -> Theme:
    """One validated theme; raises ThemeFileError with a message that names the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ThemeFileError(f"cannot read ({error})") from error
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ThemeFileError(f"not valid TOML ({error})") from error
    return _theme_from_data(data, text)


def _theme_from_data(data: dict[str, Any], text: str) -> Theme:
    for key, value in data.items():
        where = f"line {_line_of(text, key)}"
        if key not in _KEY_TYPES:
            raise ThemeFileError(f"{where}: {key!r} is not a theme field")
        expected = _KEY_TYPES[key]
        # bool is an int in Python, but `text_alpha = true` is surely a mistake.
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            names = " or ".join(kind.__name__ for kind in expected)
            raise ThemeFileError(f"{where}: {key!r} must be {names}, not {value!r}")
        if key in _COLOR_KEYS and isinstance(value, str):
            _check_color(value, f"{where}: {key!r}")
    for key in _REQUIRED_KEYS:
        if key not in data:
            raise ThemeFileError(f"missing required field {key!r}")
    if not data["name"].strip():
        raise ThemeFileError(f"line {_line_of(text, 'name')}: 'name' must not be empty")
    theme = Theme(**{**data, "variables": _variables(data.get("variables", {}), text)})
    try:
        theme.to_color_system().generate()
    except (ColorParseError, ValueError) as error:
        raise ThemeFileError(f"colours do not combine ({error})") from error
    return theme


def _variables(raw: dict[str, Any], text: str) -> dict[str, str]:
    variables: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            where = f"line {_line_of(text, key)}"
            raise ThemeFileError(f"{where}: variable {key!r} must be str, not {value!r}")
        variables[key] = value
    # Variables may hold styles ("bold", "none") as well as colours, so only ours are checked.
    for key in (CODE_BACKGROUND, CODE_FOREGROUND):
        if key in variables:
            _check_color(variables[key], f"line {_line_of(text, key)}: {key!r}")
    return variables


def _check_color(value: str, where: str) -> None:
    try:
        Color.parse(value)
    except ColorParseError as error:
        raise ThemeFileError(f"{where}: {value!r} is not a colour") from error


def _line_of(text: str, key: str) -> int:
    """The 1-based line that sets `key` (or opens `[key]`), for messages; 1 if not found."""
    pattern = re.compile(rf"^\s*(\[\s*)?[\"']?{re.escape(key)}[\"']?\s*(=|\])")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return 1
