"""A scripted engine behind the real Engine protocol: for fault injection and fit logic, never as
the only test of a path users take. One "token" is one whitespace-separated word."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from termllm.domain import (
    Chunk,
    Completion,
    FinishReason,
    GenParams,
    Message,
    PromptProgress,
    TextChunk,
    Think,
    Timings,
    Usage,
)
from termllm.engine.base import KvState, LoadedModel, LoadReport, LoadRequest, Placement, SpeedTest

MESSAGE_OVERHEAD = 4


@dataclass
class ScriptedModel:
    answer: list[str]
    n_ctx: int = 4096
    delay_s: float = 0.0
    fail_after: int | None = None
    reading: list[tuple[int, int]] = field(default_factory=list)
    """PromptProgress (read, total) to report before the answer, `delay_s` apart."""
    reasoning: list[str] = field(default_factory=list)
    """Reasoning pieces streamed before the answer, like a thinking model's (the token limit
    counts them too)."""
    seen: list[tuple[Message, ...]] = field(default_factory=list)
    params_seen: list[GenParams] = field(default_factory=list)

    @property
    def report(self) -> LoadReport:
        placement = Placement(0, 2, "CPU", "scripted")
        return LoadReport(self.n_ctx, 1, placement, "scripted", load_ms=1.0)

    @property
    def state_identity(self) -> str:
        return "scripted"

    def count_prompt_tokens(self, messages: Sequence[Message], think: Think = Think.AUTO) -> int:
        return sum(len(m.content.split()) + MESSAGE_OVERHEAD for m in messages)

    def shared_prefix(
        self, messages: Sequence[Message], tokens: Sequence[int] | None, think: Think = Think.AUTO
    ) -> int:
        return 0

    def read_ahead(self, messages: Sequence[Message], think: Think = Think.AUTO) -> int:
        return 0

    def save_state(self) -> KvState | None:
        return None

    def restore_state(self, state: KvState) -> bool:
        return False

    def clear_state(self) -> None:
        return None

    def speed_test(self, prompt_tokens: int, generated_tokens: int) -> SpeedTest:
        return SpeedTest(prompt_tokens, 1000.0, generated_tokens, 100.0)

    def truncate(self, text: str, max_tokens: int) -> str:
        return " ".join(text.split()[:max_tokens])

    def stream_chat(
        self, messages: Sequence[Message], params: GenParams, cancel: threading.Event
    ) -> Iterator[Chunk]:
        self.seen.append(tuple(messages))
        self.params_seen.append(params)
        produced: list[str] = []
        reasoned: list[str] = []
        pieces = [*((p, True) for p in self.reasoning), *((p, False) for p in self.answer)]
        limit = params.max_tokens or len(pieces)
        reason = FinishReason.STOP
        error = None
        for read, total in self.reading:
            time.sleep(self.delay_s)
            yield PromptProgress(read, total)
        for index, (piece, is_reasoning) in enumerate(pieces):
            if cancel.is_set():
                reason = FinishReason.CANCELLED
                break
            if self.fail_after is not None and index == self.fail_after:
                reason, error = FinishReason.ERROR, "scripted failure"
                break
            if index == limit:
                reason = FinishReason.LENGTH
                break
            time.sleep(self.delay_s)
            (reasoned if is_reasoning else produced).append(piece)
            yield TextChunk(piece, reasoning=is_reasoning)
        yield Completion(
            content="".join(produced),
            finish_reason=reason,
            usage=Usage(
                self.count_prompt_tokens(messages), len(produced) + len(reasoned), len(reasoned)
            ),
            timings=Timings(0.0, 1.0, 100.0, 100.0),
            error=error,
            reasoning="".join(reasoned),
        )

    def close(self) -> None:
        return None


@dataclass
class ScriptedEngine:
    model: ScriptedModel
    requests: list[LoadRequest] = field(default_factory=list)

    def load(self, request: LoadRequest) -> LoadedModel:
        self.requests.append(request)
        return self.model
