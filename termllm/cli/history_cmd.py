"""`termllm history ls | show | search | export | import | rm | rename`.

Titles, models and messages are text from anywhere (a model's output, an imported file): what
is shown goes through safe_text, and JSON leaves no control character raw. Text arguments go
through `argument_text` (bytes that are not UTF-8 become U+FFFD); paths keep their bytes, so a
file with such a name can still be read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from termllm.cli.context import services
from termllm.cli.output import json_text, note, print_json, print_table, stdout_console
from termllm.errors import StorageError, UsageError
from termllm.safe_text import argument_text, one_line
from termllm.services.export_markdown import when, write_export

if TYPE_CHECKING:
    from termllm.services.history import HistoryService

app = typer.Typer(help="Browse, search, export and tidy saved conversations.")

# Most characters of a title or model a list or a status line shows.
TITLE_CHARS = 80
MODEL_CHARS = 60


def _history(ctx: typer.Context) -> HistoryService:
    return services(ctx).history


@app.command("ls")
def list_conversations(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Recent conversations: id, title, model, messages, last update."""
    conversations = _history(ctx).recent(limit)
    if as_json:
        print_json(conversations)
        return
    if not conversations:
        note('No conversations yet: `termllm ask "…"` starts one.')
        return
    print_table(
        ("ID", "TITLE", "MODEL", "MESSAGES", "UPDATED"),
        [
            (
                c.id,
                one_line(c.title, TITLE_CHARS),
                one_line(c.model, MODEL_CHARS) if c.model else "?",
                str(c.message_count),
                when(c.updated_at),
            )
            for c in conversations
        ],
    )


@app.command()
def show(
    ctx: typer.Context,
    conversation_id: str = typer.Argument(..., help="Conversation id (a unique prefix works)."),
    as_json: bool = typer.Option(False, "--json", help="Print the full record as JSON."),
) -> None:
    """A conversation's transcript (the current branch)."""
    history = _history(ctx)
    conversation_id = argument_text(conversation_id)
    if as_json:
        print_json(history.export_json([history.find(conversation_id).id]))
        return
    # The Markdown is made safe to show (see export_markdown), and Rich reads it as Markdown,
    # never as its own markup.
    text = history.export_markdown([conversation_id])
    if sys.stdout.isatty():
        from rich.markdown import Markdown

        stdout_console().print(Markdown(text))
    else:
        sys.stdout.write(text)


@app.command()
def search(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="Words to find in messages and titles."),
    limit: int = typer.Option(20, "--limit", "-n", min=1),
    reasoning: bool = typer.Option(
        False, "--reasoning", help="Search thinking models' reasoning too, not only answers."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Full-text search across every conversation, best matches first."""
    query = argument_text(query)
    hits = _history(ctx).search(query, limit, reasoning=reasoning)
    if as_json:
        print_json(hits)
        return
    if not hits:
        note(f"no messages match {one_line(query, TITLE_CHARS)!r}")
        return
    console = stdout_console()
    if console.is_terminal:
        from rich.text import Text

        for hit in hits:
            title = one_line(hit.conversation_title, TITLE_CHARS)
            header = Text(f"{hit.conversation_id}  {title}", style="bold")
            snippet = Text()
            for index, part in enumerate(hit.snippet.replace("]", "[").split("[")):
                snippet.append(part, style="reverse" if index % 2 else "")
            console.print(header)
            console.print(Text(f"  {hit.role or 'title'}: "), snippet, sep="")
        return
    print_table(
        ("ID", "TITLE", "ROLE", "MATCH"),
        [
            (
                hit.conversation_id,
                one_line(hit.conversation_title, TITLE_CHARS),
                hit.role or "title",
                hit.snippet,
            )
            for hit in hits
        ],
    )


@app.command()
def export(
    ctx: typer.Context,
    conversation_ids: list[str] = typer.Argument(None, help="Conversation ids to export."),
    export_all: bool = typer.Option(False, "--all", help="Export every conversation."),
    output_format: str = typer.Option("md", "--format", "-f", help="md (reading) or json."),
    output: Path = typer.Option(None, "-o", "--output", help="Write to this file."),
) -> None:
    """Export conversations as Markdown for reading and sharing, or JSON for `import`."""
    history = _history(ctx)
    if output_format not in {"md", "json"}:
        raise UsageError(f"--format: expected md or json, got {output_format!r}")
    ids = history.all_ids() if export_all else [argument_text(i) for i in conversation_ids or []]
    if not ids:
        raise UsageError("name conversations to export, or pass --all")
    if output_format == "json":
        text = json_text(history.export_json(ids))
    else:
        text = history.export_markdown(ids)
    if output is None:
        sys.stdout.write(text)
        return
    write_export(output, text, overwrite=True)
    note(f"exported {len(ids)} conversation(s) to {output}")


@app.command("import")
def import_(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A JSON file written by `history export -f json`."),
) -> None:
    """Restore conversations from a JSON export, all or none; nothing is overwritten, and a
    conversation the history already holds is skipped."""
    shown = one_line(argument_text(str(path)))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise StorageError(f"cannot read {shown}: {err.strerror or err}") from err
    except ValueError as err:
        raise UsageError(f"{shown} is not JSON: {one_line(str(err), TITLE_CHARS)}") from err
    except RecursionError as err:
        raise UsageError(f"{shown} is not a termllm export: it nests too deeply") from err
    result = _history(ctx).import_json(data)
    for conversation in result.imported:
        note(f"imported {conversation.id}  {one_line(conversation.title, TITLE_CHARS)}")
    if result.skipped:
        note(f"skipped {len(result.skipped)} already present")


@app.command("rm")
def remove(
    ctx: typer.Context,
    conversation_ids: list[str] = typer.Argument(..., help="Conversation ids to delete."),
    yes: bool = typer.Option(False, "-y", "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete conversations and all their messages."""
    history = _history(ctx)
    found = [history.find(argument_text(conversation_id)) for conversation_id in conversation_ids]
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("not asking on a non-terminal: pass -y to delete")
        titles = ", ".join(f"{c.id} ({one_line(c.title, TITLE_CHARS)})" for c in found)
        if not typer.confirm(f"Delete {titles}?", default=False, err=True):
            note("nothing deleted")
            raise typer.Exit(1)
    deleted = history.delete([conversation.id for conversation in found])
    note(f"deleted {len(deleted)} conversation(s)")


@app.command()
def rename(
    ctx: typer.Context,
    conversation_id: str = typer.Argument(..., help="Conversation id (a unique prefix works)."),
    title: str = typer.Argument(..., help="The new title."),
) -> None:
    """Give a conversation a new title."""
    renamed = _history(ctx).rename(argument_text(conversation_id), argument_text(title))
    note(f"{renamed.id} is now titled {one_line(renamed.title, TITLE_CHARS)!r}")
