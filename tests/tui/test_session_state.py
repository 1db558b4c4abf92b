"""Switching conversations in the app with the real starter model: coming back to one starts
from its state kept in memory and reads only the new tokens of the same prompt a full re-read
would read."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from termllm.app import build_services
from termllm.config import load_config
from termllm.domain import Completion
from termllm.services.turn import AnswerAgain, NewQuestion, Turn, TurnListener
from termllm.tui.session import ChatSession

MODEL = "SmolLM2-135M-Instruct"


def session_with(**env: str) -> ChatSession:
    settings = {
        "TERMLLM_GENERATION_TEMPERATURE": "0",
        "TERMLLM_GENERATION_SEED": "5",
        "TERMLLM_GENERATION_MAX_TOKENS": "24",
        **env,
    }
    return ChatSession(build_services(load_config({**os.environ, **settings})), MODEL)


def send(session: ChatSession, conversation_id: str | None, text: str) -> tuple[str, Completion]:
    return run(session, NewQuestion(text, conversation_id))


def run(session: ChatSession, turn: Turn) -> tuple[str, Completion]:
    result = session.ask(turn, TurnListener(), threading.Event())
    assert result.conversation_id is not None
    return result.conversation_id, result.completion


def test_switching_back_reads_only_the_new_turn_and_answers_the_same(starter_model: Path) -> None:
    # Only the memory cache, so nothing can come from disk.
    session = session_with(TERMLLM_CACHE_DISK_MB="0")
    first, opening = send(session, None, "Describe the four seasons, one sentence each.")
    send(session, None, "Name three fruits.")
    _, returned = send(session, first, "Which season is the coldest?")

    read_before = opening.usage.prompt_tokens + opening.usage.completion_tokens - 1
    assert returned.timings.cached_tokens >= read_before - 2
    assert returned.usage.prompt_tokens - returned.timings.cached_tokens < 40

    # The same turn in a session that keeps no state at all re-reads everything.
    plain = session_with(TERMLLM_CACHE_DISK_MB="0", TERMLLM_CACHE_RAM_MB="0")
    services = plain._services
    branch = services.history.store.current_branch(first)
    # Replay the conversation as it was before the third turn into a new conversation.
    conversation = services.history.store.create_conversation("copy", None, None, {})
    parent = None
    for record in branch[:2]:
        parent = services.history.store.add_message(
            conversation.id, parent, record.role, record.content
        ).id
    _, reread = send(plain, conversation.id, "Which season is the coldest?")
    assert reread.timings.cached_tokens == 0
    # The same prompt: the state spared reading it, it did not change it. (Greedy texts of the
    # two paths may part at a near-tie; tests/engine compares their next-token distributions.)
    assert reread.usage.prompt_tokens == returned.usage.prompt_tokens


def test_regenerating_reads_nothing_again(starter_model: Path) -> None:
    session = session_with(TERMLLM_CACHE_DISK_MB="0")
    # Long enough that the kept state covers well over MIN_GAIN_TOKENS more than the other
    # conversation, which shares only the template's opening with it.
    conversation, first = send(
        session, None, "Give me a name for a cat, and say in two sentences why it suits a kitten."
    )
    send(session, None, "Name three fruits.")
    _, again = run(session, AnswerAgain(conversation))
    # The question and everything before it come from the kept state; generation needs the
    # last prompt token evaluated once more.
    assert again.usage.prompt_tokens == first.usage.prompt_tokens
    assert again.timings.cached_tokens == first.usage.prompt_tokens - 1
