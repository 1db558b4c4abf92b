"""`termllm bench`: measure a model on this machine; a table, or JSON with --json."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import typer

from termllm.cli.context import services
from termllm.cli.options import (
    FLASH_ATTN_HELP,
    KV_TYPE_HELP,
    check_flag,
    check_memory_flags,
    memory_flags,
)
from termllm.cli.output import kv_cache_words, note, print_json, print_table
from termllm.cli.server_bench_render import server_bench
from termllm.domain import ServerModel
from termllm.setting_fields import THREADS
from termllm.units import format_bytes

if TYPE_CHECKING:
    from termllm.services.bench import BenchResult


def bench(
    ctx: typer.Context,
    model: str = typer.Option(None, "-m", "--model", help="Model reference (see `termllm ls`)."),
    n_ctx: int = typer.Option(None, "--ctx", min=256, help="Context size in tokens."),
    gpu_layers: str = typer.Option(None, "--gpu-layers", help="auto, 0 (CPU) or N layers."),
    threads: int = typer.Option(None, "--threads", help="CPU threads (1 to 512)."),
    kv_type: str = typer.Option(None, "--kv-type", help=KV_TYPE_HELP),
    flash_attn: str = typer.Option(None, "--flash-attn", help=FLASH_ATTN_HELP),
    history_tokens: int = typer.Option(
        1500, "--history", min=64, help="Tokens of the conversation continued."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Measure load time, prompt and decode speed, and time to first token (fresh, and
    continuing a long conversation with and without its saved state)."""
    from termllm.services.bench import run_bench
    from termllm.services.chat import LoadOptions, parse_gpu_layers

    check_flag("--threads", THREADS, threads)
    kv_cache_type, flash_attention = memory_flags(kv_type, flash_attn)
    found = services(ctx)
    check_memory_flags(kv_cache_type, flash_attention, found.config.settings.models)
    chat = found.chat
    chosen = chat.choose_model(model)
    if isinstance(chosen, ServerModel):
        server_bench(chat, chosen, as_json)
        return
    options = LoadOptions(
        n_ctx=n_ctx,
        gpu_layers=parse_gpu_layers(gpu_layers, "--gpu-layers") if gpu_layers else None,
        threads=threads,
        kv_cache_type=kv_cache_type,
        flash_attention=flash_attention,
    )
    result = run_bench(chat, chosen, options, history_tokens, on_step=lambda step: note(f"{step}…"))
    if as_json:
        print_json(asdict(result))
    else:
        print_table(None, rows(result))


def rows(result: BenchResult) -> list[tuple[str, str]]:
    speed = result.speed
    history = f"{result.history_tokens:,}"
    return [
        ("model", result.model),
        ("placement", f"{result.placement} · {result.threads} threads · context {result.n_ctx:,}"),
        ("KV cache", kv_cache_words(result.kv_cache_type, result.flash_attention)),
        ("load", f"{result.load_ms:,.0f} ms"),
        ("prompt", f"{speed.prompt_tokens_per_s:,.0f} tok/s ({speed.prompt_tokens} tokens)"),
        ("decode", f"{speed.decode_tokens_per_s:,.1f} tok/s ({speed.generated_tokens} tokens)"),
        (
            "first token, fresh",
            f"{result.fresh_ttft_ms:,.0f} ms ({result.fresh_prompt_tokens}-token prompt)",
        ),
        (
            "first token, continuing",
            f"{result.reread_ttft_ms:,.0f} ms re-reading {history} tokens of history",
        ),
        (
            "  from saved state",
            f"{result.restored_ttft_ms:,.0f} ms ({format_bytes(result.state_bytes)} state restored"
            f" in {result.state_restore_ms:,.0f} ms, saved in {result.state_save_ms:,.0f} ms)",
        ),
    ]


def register(app: typer.Typer) -> None:
    app.command()(bench)
