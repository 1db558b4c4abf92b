"""`termllm bench -m @server/model`: the server's speed as seen from here."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from termllm.cli.output import note, print_json, print_table
from termllm.domain import ServerModel

if TYPE_CHECKING:
    from termllm.services.chat import ChatService
    from termllm.services.server_bench import ServerBenchResult


def server_bench(chat: ChatService, model: ServerModel, as_json: bool) -> None:
    from termllm.services.server_bench import run_server_bench

    result = run_server_bench(chat, model, on_step=lambda step: note(f"{step}…"))
    if as_json:
        print_json(asdict(result))
    else:
        print_table(None, rows(result))


def rows(result: ServerBenchResult) -> list[tuple[str, str]]:
    if result.decode_tokens_per_s is not None:
        decode = f"{result.decode_tokens_per_s:,.1f} tok/s ({result.generated_tokens} tokens)"
    else:
        decode = (
            f"{result.pieces_per_s:,.1f} pieces/s ({result.pieces} pieces; the server reports"
            " no token counts)"
        )
    return [
        ("model", result.model),
        ("placement", f"server {result.server}"),
        ("model list", f"{result.connect_ms:,.0f} ms (connection and one round trip)"),
        ("first token", f"{result.ttft_ms:,.0f} ms (median of 3 short prompts)"),
        ("decode", decode),
    ]
