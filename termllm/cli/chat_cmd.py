"""`termllm chat` (and bare `termllm`): open the chat app."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from termllm.cli.context import services
from termllm.cli.options import (
    FLASH_ATTN_HELP,
    KV_TYPE_HELP,
    check_cid,
    memory_flags,
    with_memory_flags,
)
from termllm.errors import UsageError


def chat(
    ctx: typer.Context,
    model: str = typer.Option(None, "-m", "--model", help="Model reference (see `termllm ls`)."),
    cid: str = typer.Option(None, "--cid", help="Open this conversation (an id prefix)."),
    # Plain defaults: bare `termllm` calls this function itself, without Typer's.
    kv_type: Annotated[str | None, typer.Option("--kv-type", help=KV_TYPE_HELP)] = None,
    flash_attn: Annotated[str | None, typer.Option("--flash-attn", help=FLASH_ATTN_HELP)] = None,
) -> None:
    """Open the chat app: many saved conversations with local models."""
    check_cid(cid)
    kv_cache_type, flash_attention = memory_flags(kv_type, flash_attn)
    # The app loads every model with the settings: the flags stand in for them.
    found = with_memory_flags(services(ctx), kv_cache_type, flash_attention)
    # Arguments are checked before the app opens, as `ask` checks them: same message, same exit
    # code, and no full-screen app that opens only to show a toast.
    conversation_id = found.history.find(cid).id if cid else None
    if model:
        found.chat.choose_model(model)
    if not _on_a_terminal():
        # Without one, Textual would still start and spin a core drawing escape codes nobody sees.
        raise UsageError("the chat app needs a terminal; use `termllm ask` for pipes")
    # Imported here: Textual takes a noticeable time to import, and other commands never need it.
    from termllm.tui.app import ChatApp

    app = ChatApp(found, model_ref=model, conversation_id=conversation_id)
    app.run()
    if app.return_code:
        raise typer.Exit(app.return_code)


def _on_a_terminal() -> bool:
    # Textual reads keys from stdin and draws on stderr; stdout redirected means a script or a
    # pipe is waiting for output the app never writes there.
    streams = (sys.stdin, sys.stdout, sys.stderr)
    return all(stream is not None and stream.isatty() for stream in streams)


def register(app: typer.Typer) -> None:
    app.command()(chat)
