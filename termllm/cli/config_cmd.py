"""`termllm config path | show`: where termllm keeps things, and the settings in effect."""

from __future__ import annotations

import os

import typer

from termllm.cli.context import services
from termllm.cli.output import print_json, print_table

app = typer.Typer(help="Show where termllm keeps its files and the settings in effect.")


@app.command()
def path() -> None:
    """Print the config file's path (it need not exist yet)."""
    from termllm.config import config_file_path

    typer.echo(str(config_file_path(os.environ)))


@app.command()
def show(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Print the effective settings (defaults, config.toml, TERMLLM_* variables) and paths."""
    from termllm.config import describe

    config = services(ctx).config
    paths = {
        "config_file": config.paths.config_file,
        "data_dir": config.paths.data_dir,
        "state_dir": config.paths.state_dir,
        "log_dir": config.paths.log_dir,
        "cache_dir": config.paths.cache_dir,
        "hub_cache": config.paths.hub_cache,
    }
    rows = describe(config.settings)
    if as_json:
        print_json({"settings": {name: value for name, value, _ in rows}, "paths": paths})
        return
    print_table(
        ("SETTING", "VALUE", "MEANING"),
        [
            (name, repr(value) if isinstance(value, str) else str(value), meaning)
            for name, value, meaning in rows
        ],
    )
    typer.echo()
    print_table(("PATH", "LOCATION"), [(name, str(location)) for name, location in paths.items()])
