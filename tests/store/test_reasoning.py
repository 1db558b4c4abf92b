"""A thinking model's reasoning in the history: saved apart from the answer, exported and
imported with it, searched only when asked."""

from __future__ import annotations

import pytest

from termllm.store import HistoryStore
from termllm.store.exchange import ExportFormatError, parse_export, to_export


def answered(store: HistoryStore, reasoning: str | None) -> tuple[str, str]:
    conversation = store.create_conversation("Sums", "m", None, {})
    question = store.add_message(conversation.id, None, "user", "What is 2+2?")
    answer = store.add_message(
        conversation.id,
        question.id,
        "assistant",
        "4",
        finish_reason="stop",
        reasoning=reasoning,
        reasoning_tokens=None if reasoning is None else 7,
    )
    return conversation.id, answer.id


def test_reasoning_is_kept_apart_and_travels_with_an_export(store: HistoryStore) -> None:
    conversation_id, _ = answered(store, "Two and two make four, plainly.")
    conversation = store.get_conversation(conversation_id)
    export = to_export(conversation, store.messages(conversation_id))
    exported = export["messages"][-1]  # type: ignore[index]
    assert (exported["content"], exported["reasoning"], exported["reasoning_tokens"]) == (
        "4",
        "Two and two make four, plainly.",
        7,
    )
    _, messages = parse_export(export)
    assert (messages[-1].reasoning, messages[-1].reasoning_tokens) == (
        "Two and two make four, plainly.",
        7,
    )


def test_only_answers_have_reasoning(store: HistoryStore) -> None:
    conversation_id, _ = answered(store, None)
    with pytest.raises(ValueError, match="reasoning is only for answers"):
        store.add_message(conversation_id, None, "user", "Hi", reasoning="no")
    export = to_export(store.get_conversation(conversation_id), store.messages(conversation_id))
    export["messages"][0]["reasoning"] = "planted"  # type: ignore[index]
    with pytest.raises(ExportFormatError, match=r"messages\[0\]\.reasoning"):
        parse_export(export)


@pytest.mark.parametrize("query", ["plainly", "plain", "make four"])
def test_search_finds_reasoning_only_when_asked(store: HistoryStore, query: str) -> None:
    _, answer_id = answered(store, "Two and two make four, plainly.")
    prefix = query == "plain"
    assert store.search(query, prefix=prefix) == []
    (hit,) = store.search(query, prefix=prefix, reasoning=True)
    assert (hit.message_id, hit.role) == (answer_id, "reasoning")
    assert "[" in hit.snippet


def test_substring_search_reaches_reasoning_too(store: HistoryStore) -> None:
    _, answer_id = answered(store, "答えは東京タワーの高さです")
    assert store.search("東京タワー") == []
    (hit,) = store.search("東京タワー", reasoning=True)
    assert (hit.message_id, hit.role) == (answer_id, "reasoning")
    (short,) = store.search("東京", reasoning=True)
    assert short.message_id == answer_id
