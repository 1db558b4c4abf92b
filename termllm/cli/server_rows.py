"""How `ls` and `doctor` show a configured server: a row per model it lists, or one row
saying why it could not be asked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from termllm.domain import ModelSource

if TYPE_CHECKING:
    from termllm.services.servers import ServerListing

_NONE = "-"


def server_rows(listing: ServerListing) -> list[tuple[str, ...]]:
    """Rows in `ls`'s columns: REF, QUANT, PARAMS, SIZE, SOURCE, LAST USED, PATH."""
    source = ModelSource.SERVER.value
    if listing.error is not None:
        return [
            (
                f"@{listing.name}/…",
                _NONE,
                _NONE,
                _NONE,
                source,
                _NONE,
                f"unreachable: {listing.error}",
            )
        ]
    return [
        (model.ref, _NONE, _NONE, _NONE, source, _NONE, listing.url) for model in listing.models
    ]


def server_entries(listing: ServerListing) -> list[dict[str, Any]]:
    """`ls --json` entries: one per model, or one for a server that did not answer."""
    common = {"source": ModelSource.SERVER.value, "server": listing.name, "url": listing.url}
    if listing.error is not None:
        return [{**common, "ref": None, "reachable": False, "error": listing.error}]
    return [
        {
            **common,
            "ref": model.ref,
            "name": model.model_id,
            "context_size": model.context_size,
            "reachable": True,
        }
        for model in listing.models
    ]


def server_line(listing: ServerListing) -> str:
    """`doctor`'s line for a server: whether it answers, how fast, and its models."""
    if listing.error is not None:
        return f"{listing.url} · unreachable: {listing.error}"
    names = ", ".join(model.model_id for model in listing.models[:10]) or "none"
    more = f" (+{len(listing.models) - 10} more)" if len(listing.models) > 10 else ""
    count = len(listing.models)
    return (
        f"{listing.url} · answers in {listing.answer_ms:,.0f} ms ·"
        f" {count} model{'s' if count != 1 else ''}: {names}{more}"
    )


def server_json(listing: ServerListing) -> dict[str, Any]:
    """`doctor --json`'s entry for a server."""
    return {
        "name": listing.name,
        "url": listing.url,
        "reachable": listing.error is None,
        "error": listing.error,
        "answer_ms": round(listing.answer_ms, 1) if listing.error is None else None,
        "models": [model.model_id for model in listing.models],
    }
