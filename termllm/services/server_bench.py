"""`termllm bench` on a server's model: what the network and the server give back, measured
from here: the round trip of its model list, time to first token and decode speed."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from termllm.domain import Completion, GenParams, Message, Role, ServerModel, TextChunk
from termllm.services.chat import ChatService, LoadOptions

RUNS = 3
GENERATED_TOKENS = 128
PROMPT = "Write a short story about a lighthouse keeper."


@dataclass(frozen=True)
class ServerBenchResult:
    model: str
    server: str
    connect_ms: float
    """Asking the server for its model list (connection and one round trip)."""
    ttft_ms: float
    """Median time from sending a short prompt to its first piece of answer."""
    decode_tokens_per_s: float | None
    """From the server's token counts; None where it reports none."""
    pieces_per_s: float
    """Pieces of answer streamed per second after the first (a token each, on llama.cpp)."""
    generated_tokens: int | None
    pieces: int


def run_server_bench(
    chat: ChatService, model: ServerModel, on_step: Callable[[str], None] = lambda step: None
) -> ServerBenchResult:
    on_step(f"asking server {model.server} for its models")
    loaded = chat.load(model, LoadOptions())
    try:
        params = GenParams(temperature=0.0, max_tokens=GENERATED_TOKENS, seed=0)
        ttfts: list[float] = []
        last: tuple[Completion, int, float] | None = None
        for run in range(1, RUNS + 1):
            on_step(f"answer {run} of {RUNS} ({GENERATED_TOKENS} tokens at most)")
            started = time.perf_counter()
            first = end = 0.0
            pieces = 0
            completion: Completion | None = None
            for chunk in loaded.stream_chat(
                [Message(Role.USER, PROMPT)], params, threading.Event()
            ):
                if isinstance(chunk, TextChunk):
                    end = time.perf_counter()
                    first = first or end
                    pieces += 1
                elif isinstance(chunk, Completion):
                    completion = chunk
            assert completion is not None
            if completion.error:
                from termllm.errors import NetworkError

                raise NetworkError(completion.error)
            ttfts.append((first - started) * 1000 if pieces else 0.0)
            last = (completion, pieces, end - first)
        connect_ms = loaded.report.load_ms
    finally:
        loaded.close()
    assert last is not None
    completion, pieces, decode_s = last
    generated = completion.usage.completion_tokens
    return ServerBenchResult(
        model=model.ref,
        server=model.server,
        connect_ms=connect_ms,
        ttft_ms=statistics.median(ttfts),
        decode_tokens_per_s=(
            (generated - 1) / decode_s if generated and generated > 1 and decode_s > 0 else None
        ),
        pieces_per_s=(pieces - 1) / decode_s if pieces > 1 and decode_s > 0 else 0.0,
        generated_tokens=generated,
        pieces=pieces,
    )
