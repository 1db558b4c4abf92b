"""How commands reach the services: built on first use, so `--help` loads no settings or models."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from termllm.app import Services


class LazyServices:
    def __init__(self) -> None:
        self._services: Services | None = None

    def get(self) -> Services:
        if self._services is None:
            # Imported on first use: the services pull in the GGUF reader and the catalog,
            # which `--help` never needs.
            from termllm.app import load_services

            self._services = load_services()
        return self._services


def services(ctx: typer.Context) -> Services:
    lazy: LazyServices = ctx.find_root().obj
    return lazy.get()
