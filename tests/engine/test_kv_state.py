"""Saving and restoring the real starter model's KV cache: a restored state must be reused,
and continue with the next-token distribution a model that read the whole conversation has.

(Not the same greedy text: the restored state and the re-read evaluate the prompt in other
batches, and llama.cpp's results depend on batch shapes; see tests/logits.py.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from logits import assert_same_distribution, counting_evals, first_token

from termllm.domain import Completion, GenParams, Message, Role, TextChunk
from termllm.engine.base import KvState, LoadRequest
from termllm.engine.llama_backend import READ_AHEAD_TOKENS, LlamaEngine, LlamaModel

GREEDY = GenParams(temperature=0.0, seed=1, max_tokens=24)
HISTORY = [
    Message(Role.SYSTEM, "You are a helpful assistant."),
    Message(Role.USER, "Tell me about the planets of the solar system, one line each."),
]
OTHER = [Message(Role.USER, "Write a haiku about autumn leaves.")]


def answer(model: LlamaModel, messages: Sequence[Message]) -> Completion:
    chunks = list(model.stream_chat(messages, GREEDY, threading.Event()))
    end = chunks[-1]
    assert isinstance(end, Completion)
    assert "".join(c.text for c in chunks if isinstance(c, TextChunk)) == end.content
    return end


def follow_up(first: Completion) -> list[Message]:
    return [
        *HISTORY,
        Message(Role.ASSISTANT, first.content),
        Message(Role.USER, "Which one is the largest?"),
    ]


@pytest.fixture(scope="module")
def models(starter_model: Path) -> Iterator[tuple[LlamaModel, LlamaModel]]:
    request = LoadRequest(starter_model, n_ctx=1024, threads=2)
    first, second = LlamaEngine().load(request), LlamaEngine().load(request)
    yield first, second
    first.close()
    second.close()


def test_a_restored_state_continues_like_the_model_that_read_it(
    models: tuple[LlamaModel, LlamaModel],
) -> None:
    reader, fresh = models
    reader.clear_state()
    fresh.clear_state()
    first = answer(reader, HISTORY)
    saved = reader.save_state()
    assert saved is not None and len(saved.tokens) >= first.usage.prompt_tokens
    assert reader.state_identity == fresh.state_identity

    messages = follow_up(first)
    without_state, reread = first_token(fresh, messages)
    fresh.clear_state()
    assert fresh.shared_prefix(messages, None) == 0
    assert fresh.restore_state(saved)
    covered = fresh.shared_prefix(messages, None)
    assert covered > first.usage.prompt_tokens, "the answer's tokens are reused too"
    with_state, restored = first_token(fresh, messages)
    continued, switched_back = first_token_after_restoring(reader, saved, messages)

    assert without_state.timings.cached_tokens == 0
    assert with_state.timings.cached_tokens == continued.timings.cached_tokens == covered
    assert with_state.usage.prompt_tokens == without_state.usage.prompt_tokens
    assert_same_distribution(reread, restored)
    assert_same_distribution(reread, switched_back)


def first_token_after_restoring(
    model: LlamaModel, state: KvState, messages: list[Message]
) -> tuple[Completion, npt.NDArray[np.float32]]:
    # The model reads another conversation in between, as when the user switches away and back.
    answer(model, OTHER)
    assert model.shared_prefix(messages, None) < len(state.tokens) // 2
    assert model.restore_state(state)
    return first_token(model, messages)


def test_the_prompt_exactly_as_saved_is_answered_from_fresh_logits(
    models: tuple[LlamaModel, LlamaModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, fresh = models
    reader.clear_state()
    expected_end, expected = first_token(reader, HISTORY)
    # One token was sampled and not evaluated: the state holds exactly the prompt, and
    # restoring it leaves no logits to sample from.
    prompt_only = reader.save_state()
    assert prompt_only is not None
    assert len(prompt_only.tokens) == expected_end.usage.prompt_tokens
    # What the last evaluation left in `fresh`: another prompt's logits, which sampling
    # straight after the restore would use.
    answer(fresh, OTHER)
    assert fresh.restore_state(prompt_only)
    evaluated = counting_evals(fresh, monkeypatch)
    end, logits = first_token(fresh, HISTORY)
    assert evaluated == [1], "the prompt's last token is evaluated again, for fresh logits"
    assert end.timings.cached_tokens == len(prompt_only.tokens) - 1
    assert_same_distribution(expected, logits)


def test_a_state_the_engine_rejects_leaves_an_empty_cache(
    models: tuple[LlamaModel, LlamaModel],
) -> None:
    reader, _ = models
    answer(reader, HISTORY)
    garbage = KvState(tuple(range(40)), bytearray(b"\x01" * 4096))
    assert not reader.restore_state(garbage)
    assert reader.shared_prefix(HISTORY, None) == 0
    assert answer(reader, HISTORY).timings.cached_tokens == 0


def test_the_identity_changes_with_the_context_size(starter_model: Path) -> None:
    small = LlamaEngine().load(LoadRequest(starter_model, n_ctx=512, threads=2))
    try:
        same = LlamaEngine().load(LoadRequest(starter_model, n_ctx=512, threads=2))
        assert small.state_identity == same.state_identity
        same.close()
        larger = LlamaEngine().load(LoadRequest(starter_model, n_ctx=768, threads=2))
        assert larger.state_identity != small.state_identity
        larger.close()
    finally:
        small.close()


def test_the_speed_test_measures_and_leaves_the_cache_empty(
    models: tuple[LlamaModel, LlamaModel],
) -> None:
    reader, _ = models
    answer(reader, HISTORY)
    measured = reader.speed_test(64, 8)
    assert measured.prompt_tokens == 64 and measured.generated_tokens == 8
    assert measured.prompt_tokens_per_s > 0 and measured.decode_tokens_per_s > 0
    assert reader.shared_prefix(HISTORY, None) == 0


def test_reading_ahead_leaves_only_the_next_question_to_read(
    models: tuple[LlamaModel, LlamaModel],
) -> None:
    reader, fresh = models
    reader.clear_state()
    first = answer(reader, HISTORY)
    before = reader.save_state()
    assert before is not None
    answered = [*HISTORY, Message(Role.ASSISTANT, first.content)]
    read = reader.read_ahead(answered)
    after = reader.save_state()
    assert after is not None
    # The last sampled token, the end of the answer and the opening of a user turn.
    assert 0 < read <= READ_AHEAD_TOKENS
    assert len(after.tokens) == len(before.tokens) + read
    assert after.tokens[: len(before.tokens)] == before.tokens
    messages = follow_up(first)
    assert reader.shared_prefix(messages, after.tokens) == len(after.tokens)
    assert reader.read_ahead(answered) == 0, "what was read is not read again"

    continued, from_read_ahead = first_token(reader, messages)
    fresh.clear_state()
    _, reread = first_token(fresh, messages)
    assert continued.timings.cached_tokens == len(after.tokens)
    assert_same_distribution(reread, from_read_ahead)


def test_nothing_is_read_ahead_of_a_history_that_is_not_what_the_cache_holds(
    models: tuple[LlamaModel, LlamaModel],
) -> None:
    reader, _ = models
    reader.clear_state()
    answer(reader, HISTORY)
    # As with a template that drops past reasoning: the next prompt parts from the cache
    # inside the answer, so reading its opening now would be wasted.
    answered = [*HISTORY, Message(Role.ASSISTANT, "Something else entirely.")]
    held = reader.save_state()
    assert held is not None
    assert reader.read_ahead(answered) == 0
    after = reader.save_state()
    assert after is not None and after.tokens == held.tokens
