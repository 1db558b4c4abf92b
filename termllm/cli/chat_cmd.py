"""`termllm chat` (and bare `termllm`): open the chat app."""

from __future__ import annotations

import typer

from termllm.cli.context import services


def chat(
    ctx: typer.Context,
    model: str = typer.Option(None, "-m", "--model", help="Model reference (see `termllm ls`)."),
    cid: str = typer.Option(None, "--cid", help="Open this conversation (an id prefix)."),
) -> None:
    """Open the chat app: many saved conversations with local models."""
    # Imported here: Textual takes a noticeable time to import, and other commands never need it.
    from termllm.tui.app import ChatApp

    ChatApp(services(ctx), model_ref=model, conversation_id=cid).run()


def register(app: typer.Typer) -> None:
    app.command()(chat)
