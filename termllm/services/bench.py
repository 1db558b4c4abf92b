"""`termllm bench`: the numbers that pick a model and quantization on this machine — load time,
prompt and decode speed, and time to first token for a fresh prompt and for continuing a long
conversation, re-reading it or starting from its saved state."""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from termllm.domain import Completion, GenParams, LocalModel, Message, Role
from termllm.engine.base import LoadedModel, SpeedTest
from termllm.services.chat import ChatService, LoadOptions
from termllm.services.state_files import StateFiles

PROMPT_TOKENS = 512
GENERATED_TOKENS = 128
HISTORY_TOKENS = 1500
FRESH_RUNS = 3
FRESH_PROMPT = "Give me one tip for writing clear commit messages in a software project."
FOLLOW_UP = "Summarize what we discussed in one sentence."
FIRST_TOKEN = GenParams(temperature=0.0, seed=1, max_tokens=1)
PREVIOUS_ANSWER_TOKENS = 32
PREVIOUS_ANSWER = GenParams(temperature=0.0, seed=1, max_tokens=PREVIOUS_ANSWER_TOKENS)
_TOPICS = (
    "the water cycle",
    "how compilers turn source code into machine code",
    "the history of the printing press",
    "why the sky is blue",
    "how vaccines train the immune system",
    "the rules of chess openings",
    "how bread rises",
    "plate tectonics",
)
_ANSWER = (
    "Here is a detailed explanation of {topic}. It starts with the basic idea, then the"
    " mechanisms that drive it, the history of how people came to understand it, some common"
    " misconceptions, and finally a few practical examples that show why it matters in daily"
    " life. Each part builds on the previous one, so the whole picture becomes clear step by"
    " step, and the examples connect the theory to things you can observe yourself."
)


@dataclass(frozen=True)
class BenchResult:
    model: str
    n_ctx: int
    threads: int
    placement: str
    kv_cache_type: str
    flash_attention: bool
    """Whether attention ran as flash attention (`auto` resolved)."""
    load_ms: float
    speed: SpeedTest
    fresh_prompt_tokens: int
    fresh_ttft_ms: float
    history_tokens: int
    reread_ttft_ms: float
    """Continuing the conversation by evaluating its whole history."""
    restored_ttft_ms: float
    """Continuing it from its saved state (read from disk and restored), then the new tokens."""
    state_restore_ms: float
    """The part of `restored_ttft_ms` spent reading the saved state and handing it over."""
    state_bytes: int
    state_save_ms: float
    """Taking the state from the model and writing it to disk after an answer."""


def run_bench(
    chat: ChatService,
    model: LocalModel,
    options: LoadOptions,
    history_tokens: int = HISTORY_TOKENS,
    on_step: Callable[[str], None] = lambda step: None,
) -> BenchResult:
    on_step(f"loading {model.ref}")
    loaded = chat.load(model, options)
    try:
        report = loaded.report
        n_ctx = report.n_ctx
        # Small contexts still get a measurement, with what fits.
        prompt_tokens = min(PROMPT_TOKENS, n_ctx // 2)
        generated = min(GENERATED_TOKENS, n_ctx - prompt_tokens - 1)
        on_step(f"prompt speed ({prompt_tokens} tokens) and decode speed ({generated} tokens)")
        speed = loaded.speed_test(prompt_tokens, generated)
        on_step("time to first token for a fresh prompt")
        fresh = [Message(Role.USER, FRESH_PROMPT)]
        fresh_tokens = loaded.count_prompt_tokens(fresh)
        fresh_ttft = statistics.median(
            _fresh_first_token_ms(loaded, fresh) for _ in range(FRESH_RUNS)
        )
        history_tokens = min(history_tokens, n_ctx - PREVIOUS_ANSWER_TOKENS - 64)
        on_step(f"a conversation of {history_tokens} tokens, re-read and restored")
        continued = _continuation(loaded, history_tokens)
    finally:
        loaded.close()
    placement = report.placement
    return BenchResult(
        model=model.ref,
        n_ctx=n_ctx,
        threads=report.threads,
        placement=(
            f"{placement.blocks_on_gpu}/{placement.total_layers} layers on {placement.device}"
        ),
        kv_cache_type=report.kv_cache_type.value,
        flash_attention=report.flash_attention,
        load_ms=report.load_ms,
        speed=speed,
        fresh_prompt_tokens=fresh_tokens,
        fresh_ttft_ms=fresh_ttft,
        history_tokens=continued.history_tokens,
        reread_ttft_ms=continued.reread_ttft_ms,
        restored_ttft_ms=continued.restored_ttft_ms,
        state_restore_ms=continued.state_restore_ms,
        state_bytes=continued.state_bytes,
        state_save_ms=continued.state_save_ms,
    )


@dataclass(frozen=True)
class _Continuation:
    history_tokens: int
    reread_ttft_ms: float
    restored_ttft_ms: float
    state_restore_ms: float
    state_bytes: int
    state_save_ms: float


def _continuation(model: LoadedModel, history_tokens: int) -> _Continuation:
    """As a user continues a conversation: its last answer was generated (so the state holds
    it as generated), and a new question follows."""
    history = synthetic_history(model, history_tokens)
    model.clear_state()
    previous = _complete(model, history, PREVIOUS_ANSWER)
    conversation = [
        *history,
        Message(Role.ASSISTANT, previous.content),
        Message(Role.USER, FOLLOW_UP),
    ]
    with tempfile.TemporaryDirectory(prefix="termllm-bench-") as scratch:
        files = StateFiles(Path(scratch), 1 << 40, Path(scratch) / "bench.log")
        identity = model.state_identity
        started = time.perf_counter()
        state = model.save_state()
        if state is not None:
            files.write("bench", identity, state)
        save_ms = (time.perf_counter() - started) * 1000

        model.clear_state()
        reread_ms = _first_token_ms(model, conversation)

        model.clear_state()
        started = time.perf_counter()
        restored = files.read("bench", identity)
        if restored is not None:
            model.restore_state(restored)
        restore_ms = (time.perf_counter() - started) * 1000
        restored_ms = restore_ms + _first_token_ms(model, conversation)
    model.clear_state()
    return _Continuation(
        history_tokens=model.count_prompt_tokens(conversation),
        reread_ttft_ms=reread_ms,
        restored_ttft_ms=restored_ms,
        state_restore_ms=restore_ms,
        state_bytes=state.size_bytes if state is not None else 0,
        state_save_ms=save_ms,
    )


def synthetic_history(model: LoadedModel, tokens: int) -> list[Message]:
    """Turns about everyday topics until the prompt holds `tokens` tokens; ends with a user
    message, as a conversation does before its next answer."""
    messages: list[Message] = []
    turn = 0
    while True:
        topic = _TOPICS[turn % len(_TOPICS)]
        question = Message(Role.USER, f"Question {turn + 1}: can you explain {topic}?")
        if model.count_prompt_tokens([*messages, question]) >= tokens:
            return [*messages, question]
        messages += [question, Message(Role.ASSISTANT, _ANSWER.format(topic=topic))]
        turn += 1


def _fresh_first_token_ms(model: LoadedModel, messages: Sequence[Message]) -> float:
    model.clear_state()
    return _first_token_ms(model, messages)


def _first_token_ms(model: LoadedModel, messages: Sequence[Message]) -> float:
    return _complete(model, messages, FIRST_TOKEN).timings.ttft_ms


def _complete(model: LoadedModel, messages: Sequence[Message], params: GenParams) -> Completion:
    for chunk in model.stream_chat(messages, params, threading.Event()):
        if isinstance(chunk, Completion):
            return chunk
    raise AssertionError("an engine stream always ends with a Completion")
