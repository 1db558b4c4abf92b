"""`termllm search`: GGUF models on the Hub, most downloaded first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from termllm.cli.context import services as _services
from termllm.cli.output import note, print_json, print_table
from termllm.hub.search_limit import MAX_SEARCH_LIMIT
from termllm.units import format_count

if TYPE_CHECKING:
    from termllm.hub.search import HubModelResult


def search(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="Words in the repository name, e.g. qwen3."),
    limit: int = typer.Option(
        20, "--limit", "-n", min=1, max=MAX_SEARCH_LIMIT, help="Most results to show."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Find GGUF models on the Hugging Face Hub; `termllm info REPO` then shows what fits."""
    results = _services(ctx).models.search(query, limit)
    if as_json:
        print_json([_result_json(result) for result in results])
        return
    if not results:
        note("no GGUF models on the Hub match that")
        return
    columns = ("REPO", "PARAMS", "DOWNLOADS", "LIKES", "UPDATED", "GATED")
    # Every string here was made one safe line when the answer was parsed (hub/search.py).
    print_table(
        columns,
        [
            (
                result.repo_id,
                format_count(result.parameter_count),
                f"{result.downloads:,}",
                f"{result.likes:,}",
                result.last_modified or "?",
                "yes" if result.gated else "no",
            )
            for result in results
        ],
    )


def _result_json(result: HubModelResult) -> dict[str, Any]:
    return {
        "repo_id": result.repo_id,
        "parameter_count": result.parameter_count,
        "downloads": result.downloads,
        "likes": result.likes,
        "last_modified": result.last_modified,
        "gated": result.gated,
    }


def register(app: typer.Typer) -> None:
    app.command()(search)
