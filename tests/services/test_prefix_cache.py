"""The prefix cache with the real starter model: a prompt that took long to read is kept, and the
next prompt that starts with the same tokens restores it and reads only the rest, from memory
or (in a new process) from disk; another text, a short prompt or a zero budget get nothing, and
the disk limit holds. What is checked is what termllm guarantees: the tokens reused, never the
text the model writes."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from termllm.app import Services, build_services
from termllm.cli.ask_cmd import join_prompt
from termllm.config import load_config
from termllm.domain import Completion, GenParams, Message, Role
from termllm.engine.base import LoadedModel
from termllm.services.chat import LoadOptions
from termllm.services.prefix_cache import KEY_START, LONG_PROMPT_TOKENS, entry_key
from termllm.services.state_cache import MIB

PARAMS = GenParams(temperature=0.0, seed=3, max_tokens=2)
# One thread: on a busy 2-core machine two llama.cpp threads wait on each other for seconds.
OPTIONS = LoadOptions(n_ctx=2048, threads=1)
QUESTIONS = (
    "What is the first item of the list?",
    "How many lines does this text have?",
    "Summarize it in one sentence.",
)


def document(topic: str, lines: int = 60) -> str:
    """About 12 tokens a line; the topic comes first, so two topics differ from the start."""
    rows = [f"{topic.capitalize()}: notes from the yearly inventory."]
    rows += [
        f"{n}. The {topic} shelf {n} holds {n * 7 % 97} boxes, checked on day {n}."
        for n in range(lines)
    ]
    return "\n".join(rows)


def services_for(env: dict[str, str] | None = None) -> Services:
    return build_services(load_config({**os.environ, **(env or {})}))


def loaded_model(services: Services, starter_model: Path) -> LoadedModel:
    return services.chat.load(services.chat.choose_model(str(starter_model)), OPTIONS)


def answer(services: Services, model: LoadedModel, text: str) -> Completion:
    """A new conversation's answer (the model's live cache forgotten first, as in a new
    process), with the prompt as `ask` builds it; waits for the disk writes."""
    model.clear_state()
    messages = [Message(Role.USER, text)]
    completion = None
    for chunk in services.chat.stream(model, None, messages, PARAMS, threading.Event()):
        if isinstance(chunk, Completion):
            completion = chunk
    services.chat.flush_states()
    assert completion is not None and completion.error is None
    return completion


def entries(services: Services) -> list[Path]:
    return sorted(services.config.paths.kv_state_dir.glob(f"{KEY_START}*.kv"))


@pytest.fixture
def services(starter_model: Path) -> Services:
    return services_for()


def test_three_questions_about_one_text_cost_one_read(
    services: Services, starter_model: Path
) -> None:
    model = loaded_model(services, starter_model)
    text = document("apple")
    # The text's prompt but for the template's closing tokens, less a token where the text
    # meets the question.
    shared = model.count_prompt_tokens([Message(Role.USER, text)]) - 8
    first = answer(services, model, join_prompt(QUESTIONS[0], text))
    assert first.timings.cached_tokens == 0
    assert first.usage.prompt_tokens - 20 >= LONG_PROMPT_TOKENS
    (kept,) = entries(services)

    second = answer(services, model, join_prompt(QUESTIONS[1], text))
    model.close()
    # A new process: nothing in memory, the entry read from disk.
    again = services_for()
    fresh_model = loaded_model(again, starter_model)
    third = answer(again, fresh_model, join_prompt(QUESTIONS[2], text))
    fresh_model.close()

    for hit in (second, third):
        assert hit.timings.cached_tokens >= shared
        assert hit.usage.prompt_tokens - hit.timings.cached_tokens < LONG_PROMPT_TOKENS
    assert entries(services) == [kept], "a prompt read from an entry adds none"


def test_another_text_gets_no_hit(services: Services, starter_model: Path) -> None:
    model = loaded_model(services, starter_model)
    answer(services, model, join_prompt(QUESTIONS[0], document("apple")))
    other = answer(services, model, join_prompt(QUESTIONS[0], document("pear")))
    model.close()
    assert other.timings.cached_tokens == 0
    assert len(entries(services)) == 2


def test_a_short_prompt_keeps_nothing(services: Services, starter_model: Path) -> None:
    model = loaded_model(services, starter_model)
    answer(services, model, join_prompt(QUESTIONS[0], document("apple", lines=10)))
    model.close()
    assert entries(services) == []


def test_a_zero_budget_keeps_nothing(starter_model: Path) -> None:
    services = services_for({"TERMLLM_CACHE_RAM_MB": "0", "TERMLLM_CACHE_DISK_MB": "0"})
    model = loaded_model(services, starter_model)
    text = document("apple")
    answer(services, model, join_prompt(QUESTIONS[0], text))
    second = answer(services, model, join_prompt(QUESTIONS[1], text))
    model.close()
    assert second.timings.cached_tokens == 0
    assert entries(services) == []


def test_eviction_keeps_the_disk_limit(starter_model: Path) -> None:
    limit_mb = 40  # about two entries of this size (some 700 tokens, 23 KB each)
    services = services_for({"TERMLLM_CACHE_RAM_MB": "0", "TERMLLM_CACHE_DISK_MB": str(limit_mb)})
    model = loaded_model(services, starter_model)
    texts = [document(topic) for topic in ("apple", "pear", "plum")]
    for text in texts:
        answer(services, model, join_prompt(QUESTIONS[0], text))
    files = entries(services)
    assert sum(path.stat().st_size for path in files) <= limit_mb * MIB
    assert 1 <= len(files) < len(texts)
    newest = answer(services, model, join_prompt(QUESTIONS[1], texts[-1]))
    oldest = answer(services, model, join_prompt(QUESTIONS[1], texts[0]))
    model.close()
    assert newest.timings.cached_tokens > LONG_PROMPT_TOKENS, "the latest entry is kept"
    assert oldest.timings.cached_tokens == 0, "the least recently used was evicted"


def test_an_entry_is_named_by_its_exact_tokens() -> None:
    assert entry_key([1, 2, 3]) == entry_key((1, 2, 3))
    assert entry_key([1, 2, 3]) != entry_key([1, 2, 4])
    assert entry_key([1, 2, 3]).startswith(KEY_START)
