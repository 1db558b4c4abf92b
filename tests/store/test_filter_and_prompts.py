"""What the chat app asks of the store: prefix search for its filter, earlier prompts for its
input history."""

from __future__ import annotations

from termllm.store import HistoryStore


def test_prefix_search_matches_words_being_typed(store: HistoryStore) -> None:
    conversation = store.create_conversation("Spaghetti night", None, None, {})
    message = store.add_message(conversation.id, None, "user", "Cook the pasta al dente")
    assert store.search("past") == []
    assert [hit.message_id for hit in store.search("past", prefix=True)] == [message.id]
    assert [hit.message_id for hit in store.search("spag", prefix=True)] == [None]
    assert [hit.message_id for hit in store.search("cook al", prefix=True)] == [message.id]
    # Quoted as ever: FTS5 syntax in a prefix search is text, never an error.
    assert store.search('"* NEAR(', prefix=True) == []


def test_recent_prompts_are_distinct_newest_first_and_bounded(store: HistoryStore) -> None:
    first = store.create_conversation("a", None, None, {})
    second = store.create_conversation("b", None, None, {})
    question = store.add_message(first.id, None, "user", "hello")
    store.add_message(first.id, question.id, "assistant", "not a prompt")
    store.add_message(second.id, None, "user", "how are you?")
    store.add_message(second.id, None, "user", "hello")
    store.add_message(first.id, None, "system", "not a prompt either")
    assert store.recent_prompts(10) == ["hello", "how are you?"]
    assert store.recent_prompts(1) == ["hello"]
    assert store.recent_prompts(0) == []
