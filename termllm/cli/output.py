"""Rendering for the CLI: answers to stdout, everything else to stderr, plain when piped."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, is_dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

# Rich is imported where a console is made: a piped `ask` writes plain text and never needs
# it, and importing it is a tenth of the start-up.


def stdout_console() -> Console:
    from rich.console import Console

    # Piped output keeps whole lines: Rich would otherwise wrap tables at 80 columns.
    tty = sys.stdout.isatty()
    return Console(file=sys.stdout, width=None if tty else 10_000, soft_wrap=not tty)


def print_table(columns: Sequence[str] | None, rows: Iterable[Sequence[str]]) -> None:
    """A borderless table on stdout; cells are plain text, never Rich markup.

    Without headers it is a key/value list. Piped, lines carry no padding at their ends.
    """
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_header=columns is not None, header_style="bold", pad_edge=False)
    for index, column in enumerate(columns or ("", "")):
        table.add_column(column, style="bold" if columns is None and index == 0 else None)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console = stdout_console()
    if console.is_terminal:
        console.print(table)
        return
    with console.capture() as capture:
        console.print(table)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in capture.get().splitlines()))


def stderr_console() -> Console:
    from rich.console import Console

    return Console(file=sys.stderr, stderr=True)


def note(message: str) -> None:
    """A status line for the user on stderr, as plain text (paths are never wrapped)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


# DEL and the C1 controls are valid raw in JSON strings, but a terminal obeys C1 codes (CSI,
# OSC): escaped, the text shown is safe and the data parsed is the same.
_RAW_CONTROLS = re.compile("[\x7f-\x9f]")


def json_text(value: Any) -> str:
    """`value` as indented JSON, every character kept, safe to print on a terminal."""
    text = json.dumps(to_jsonable(value), indent=2, ensure_ascii=False)
    return _RAW_CONTROLS.sub(lambda found: f"\\u{ord(found.group()):04x}", text) + "\n"


def print_json(value: Any) -> None:
    sys.stdout.write(json_text(value))


def to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {key: to_jsonable(item) for key, item in asdict(value).items()}
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


def kv_cache_words(kv_cache_type: str, flash_attention: bool) -> str:
    """How a KV cache is kept, as `-v`, `bench` and `doctor` say it: "f16 · flash attention off"."""
    return f"{kv_cache_type} · flash attention {'on' if flash_attention else 'off'}"


def format_age(timestamp: float | None, now: float | None = None) -> str:
    if timestamp is None:
        return "never"
    seconds = max(0.0, (time.time() if now is None else now) - timestamp)
    for limit, divisor, unit in ((60, 1, "s"), (3600, 60, "min"), (86400, 3600, "h")):
        if seconds < limit:
            return f"{int(seconds // divisor)} {unit} ago"
    return f"{int(seconds // 86400)} d ago"
