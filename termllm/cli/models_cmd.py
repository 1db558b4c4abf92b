"""`termllm pull | ls | rm | info`: the models on this machine and on the Hub."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

from termllm.cli.context import services as _services
from termllm.cli.options import (
    FLASH_ATTN_HELP,
    KV_TYPE_HELP,
    memory_flags,
    with_memory_flags,
)
from termllm.cli.output import (
    format_age,
    note,
    print_json,
    print_table,
    stderr_console,
    to_jsonable,
)
from termllm.cli.server_rows import server_entries, server_rows
from termllm.errors import ExitCode, UsageError
from termllm.safe_text import one_line
from termllm.units import format_bytes, format_count

if TYPE_CHECKING:
    from termllm.domain import LocalModel
    from termllm.gguf.summary import MemoryEstimate
    from termllm.services.model_summary import ModelFacts
    from termllm.services.models import ModelInfo

REF_HELP = "owner/repo[:QUANT], owner/repo/file.gguf, a path to a .gguf file, or a local name."
PULL_HELP = "owner/repo[:QUANT] (:auto picks the file that runs best here) or owner/repo/file.gguf."
# Most characters `info` shows of a string from a model file's header (a name, a license).
METADATA_CHARS = 120


def pull(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help=PULL_HELP),
    yes: bool = typer.Option(
        False, "-y", "--yes", help="Pull even a file that will not fit in memory, without asking."
    ),
) -> None:
    """Download a model into the Hugging Face cache (resumes an interrupted pull)."""
    services = _services(ctx)
    from termllm.cli.progress import transfer_progress

    def confirm(message: str) -> bool:
        if yes:
            note(f"warning: {message}")
            return True
        if not sys.stdin.isatty():
            raise UsageError(f"{message}; not asking on a non-terminal: pass --yes to pull it")
        note(message)
        return typer.confirm("Pull it anyway?", default=False, err=True)

    try:
        with transfer_progress(stderr_console()) as progress:
            result = services.models.pull(ref, progress, confirm)
    except KeyboardInterrupt:
        # Typer would turn Ctrl-C into a silent exit; the user should know nothing is lost.
        note(f"interrupted: what was downloaded is kept; `termllm pull {ref}` resumes it")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    model = result.model
    verb = "pulled" if result.downloaded else "already present:"
    size = format_bytes(model.size_bytes)
    # Names and paths come from the Hub: one safe line each.
    note(f"{verb} {one_line(model.ref)} ({size}) → {one_line(str(model.path))}")


def ls(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """List the models on disk (Hub cache, packaged models, files used by path) and those of
    the configured servers."""
    services = _services(ctx)
    listed = services.models.list_with_facts()
    on_servers = services.servers.listings()
    if as_json:
        print_json(
            [_model_json(model, facts) for model, facts in listed]
            + [entry for listing in on_servers for entry in server_entries(listing)]
        )
        return
    if not listed and not on_servers:
        note("No models yet. Try: termllm pull bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M")
        return
    columns = ("REF", "QUANT", "PARAMS", "SIZE", "SOURCE", "LAST USED", "PATH")
    rows: list[tuple[str, ...]] = [
        (
            model.ref,
            model.quant or fact.quant or "?",
            format_count(fact.parameter_count),
            format_bytes(model.size_bytes),
            model.source.value,
            format_age(model.last_used),
            str(model.path) + (f" (+{len(model.paths) - 1} parts)" if len(model.paths) > 1 else ""),
        )
        for model, fact in listed
    ]
    rows += [row for listing in on_servers for row in server_rows(listing)]
    # File names (from the Hub, from anyone), quant names from headers and what servers say:
    # safe lines.
    print_table(columns, [tuple(one_line(cell) for cell in row) for row in rows])


def _model_json(model: LocalModel, fact: ModelFacts) -> dict[str, Any]:
    return {
        "ref": model.ref,
        "name": model.name,
        "path": str(model.path),
        "paths": [str(path) for path in model.paths],
        "size_bytes": model.size_bytes,
        "quant": model.quant or fact.quant,
        "parameter_count": fact.parameter_count,
        "architecture": fact.architecture,
        "source": model.source.value,
        "repo_id": model.repo_id,
        "commit": model.commit,
        "last_used": model.last_used,
    }


def rm(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help=REF_HELP),
    yes: bool = typer.Option(False, "-y", "--yes", help="Do not ask for confirmation."),
    forget: bool = typer.Option(
        False, "--forget", help="Only drop a file used by path from the list; never deletes it."
    ),
) -> None:
    """Delete a downloaded model (all its parts) and report the space freed."""
    services = _services(ctx)
    if forget:
        path = services.models.forget(ref)
        note(f"forgot {path} (the file is untouched)")
        return
    model = services.models.removal_candidate(ref)
    size = format_bytes(model.size_bytes)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"not asking on a non-terminal: pass -y to delete {model.ref}")
        if not typer.confirm(f"Delete {one_line(model.ref)} ({size})?", default=False, err=True):
            note("nothing deleted")
            raise typer.Exit(1)
    freed = services.models.remove(model)
    note(f"removed {one_line(model.ref)}, freed {format_bytes(freed)}")


def info(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help=REF_HELP + " owner/repo alone lists its files."),
    n_ctx: int = typer.Option(
        None, "--ctx", min=64, help="Plan memory for this context size (tokens)."
    ),
    kv_type: str = typer.Option(None, "--kv-type", help=KV_TYPE_HELP),
    flash_attn: str = typer.Option(None, "--flash-attn", help=FLASH_ATTN_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Show a model's metadata; for a Hub model not on disk, only its header is downloaded.

    owner/repo with several models lists them all: memory, where each runs here, the best pick.
    """
    from termllm.services.repo_fit import RepoFit

    kv_cache_type, flash_attention = memory_flags(kv_type, flash_attn)
    # The estimates read these from the settings, as a load would.
    services = with_memory_flags(_services(ctx), kv_cache_type, flash_attention)
    details = services.models.plan_repo(ref, n_ctx)
    if isinstance(details, RepoFit):
        from termllm.cli.repo_fit_render import print_repo_fit, repo_fit_json

        if as_json:
            print_json(repo_fit_json(details))
        else:
            print_repo_fit(details)
        return
    if as_json:
        print_json(_info_json(details))
        return
    _print_info(details)


def _info_json(details: ModelInfo) -> dict[str, Any]:
    summary = to_jsonable(details.summary)
    return {
        "ref": details.ref,
        "location": details.location,
        "source": details.source,
        "parts": details.parts,
        **summary,
        "context_size": details.context_size,
        "memory": to_jsonable(details.memory),
    }


def _print_info(details: ModelInfo) -> None:
    summary, memory = details.summary, details.memory

    def metadata(value: str | None) -> str:
        # A string from the file's header: anything its author wrote, of any length.
        return one_line(value, METADATA_CHARS) if value else "?"

    template = "none (a generic format will be used)"
    if summary.chat_template:
        template = f"yes ({metadata(summary.chat_template_family)})"
    rows: list[tuple[str, str]] = [
        ("model", one_line(details.ref)),
        ("name", metadata(summary.name)),
        (
            "location",
            one_line(details.location) + (f" ({details.parts} parts)" if details.parts > 1 else ""),
        ),
        ("architecture", metadata(summary.architecture)),
        ("parameters", format_count(summary.parameter_count)),
        ("quantization", metadata(summary.quant)),
        ("file size", format_bytes(summary.file_size)),
        ("trained context", str(summary.context_length or "?")),
        ("layers", str(summary.block_count or "?")),
        ("embedding size", str(summary.embedding_length or "?")),
        ("chat template", template),
        ("license", metadata(summary.license)),
        (f"memory at {details.context_size} ctx", memory_line(memory)),
    ]
    print_table(None, rows)


def memory_line(memory: MemoryEstimate) -> str:
    """An estimate in one line: the total, then its parts."""
    flash = " with flash attention" if memory.flash_attention else ""
    return (
        f"~{format_bytes(memory.total_bytes)} (weights {format_bytes(memory.weights_bytes)},"
        f" KV cache {format_bytes(memory.kv_cache_bytes)} in {memory.kv_cache_type},"
        f" compute {format_bytes(memory.compute_bytes)}{flash},"
        f" other {format_bytes(memory.other_bytes)})"
    )


def register(app: typer.Typer) -> None:
    app.command()(pull)
    app.command(name="ls")(ls)
    app.command(name="rm")(rm)
    app.command()(info)
