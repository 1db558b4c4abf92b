"""termllm's commands, each imported only when it runs (or when `--help` lists them).

Building every command's Typer signature and importing its module cost `ask` tens of
milliseconds of start-up on each run for commands it never uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer import _click
from typer.core import TyperGroup
from typer.main import get_group

COMMAND_MODULES: dict[str, str] = {
    "ask": "termllm.cli.ask_cmd",
    "chat": "termllm.cli.chat_cmd",
    "pull": "termllm.cli.models_cmd",
    "ls": "termllm.cli.models_cmd",
    "rm": "termllm.cli.models_cmd",
    "info": "termllm.cli.models_cmd",
    "search": "termllm.cli.search_cmd",
    "doctor": "termllm.cli.doctor_cmd",
    "bench": "termllm.cli.bench_cmd",
    "history": "termllm.cli.history_cmd",
    "config": "termllm.cli.config_cmd",
}
"""Each command's module, in the order `termllm --help` lists them. A module either has
`register(app)`, adding its commands, or is a command group of its own as `app`."""


def build_command(name: str) -> _click.Command:
    """The click command `name` runs, built from its module as Typer would have."""
    module = importlib.import_module(COMMAND_MODULES[name])
    holder = typer.Typer()
    if hasattr(module, "register"):
        module.register(holder)
    else:
        holder.add_typer(module.app, name=name)
    return get_group(holder).commands[name]


class _Commands(MutableMapping[str, _click.Command]):
    """Every command of COMMAND_MODULES by name, built when first looked up."""

    def __init__(self) -> None:
        self._built: dict[str, _click.Command] = {}
        self._names = list(COMMAND_MODULES)

    def __getitem__(self, name: str) -> _click.Command:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._built:
            self._built[name] = build_command(name)
        return self._built[name]

    def __setitem__(self, name: str, command: _click.Command) -> None:
        if name not in self._names:
            self._names.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class LazyCommandGroup(TyperGroup):
    """The root group: its commands are listed by name and built on first use."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands()
