"""Conversations and messages: saving, branches, ids, renaming and deleting."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from termllm.errors import ConversationNotFoundError, ExitCode, UsageError
from termllm.store import HistoryStore, rows
from termllm.store.records import ERROR_LENGTH


def count(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        found: int = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return found
    finally:
        conn.close()


def test_a_message_is_on_disk_when_add_message_returns(store: HistoryStore, db_path: Path) -> None:
    conversation = store.create_conversation("Hi", "org/m:Q4_0", "Be brief.", {"top_k": 40})
    question = store.add_message(conversation.id, None, "user", "hello")
    answer = store.add_message(
        conversation.id,
        question.id,
        "assistant",
        "partial",
        model="org/m:Q4_0",
        prompt_tokens=9,
        completion_tokens=1,
        timings={"ttft_ms": 12, "decode_tokens_per_s": 80.5},
        finish_reason="cancelled",
    )

    # Another connection, as another process would: the rows are committed.
    assert count(db_path, "messages") == 2
    assert store.messages(conversation.id) == [question, answer]
    assert answer.timings == {"ttft_ms": 12.0, "decode_tokens_per_s": 80.5}
    saved = store.get_conversation(conversation.id)
    assert (saved.title, saved.model, saved.system_prompt, saved.params) == (
        "Hi",
        "org/m:Q4_0",
        "Be brief.",
        {"top_k": 40},
    )
    assert saved.message_count == 2
    assert saved.updated_at == answer.created_at >= saved.created_at


def test_a_failed_answer_keeps_its_error_within_a_bound(store: HistoryStore, db_path: Path) -> None:
    conversation = store.create_conversation("t", None, None, {})
    question = store.add_message(conversation.id, None, "user", "hello")
    failed = store.add_message(
        conversation.id,
        question.id,
        "assistant",
        "",
        finish_reason="error",
        error="cannot load x.gguf: unknown model architecture 'qwen9'",
    )
    cut = store.add_message(conversation.id, question.id, "assistant", "Hal", finish_reason="error")
    huge = store.add_message(
        conversation.id,
        question.id,
        "assistant",
        "",
        finish_reason="error",
        error="\x1b[2J" + "x" * 1_000_000,
    )
    # Bytes decoded with surrogateescape: SQLite's UTF-8 alone would refuse the whole answer.
    undecoded = store.add_message(
        conversation.id,
        question.id,
        "assistant",
        "",
        finish_reason="error",
        error=b"bad \xff byte".decode("utf-8", "surrogateescape"),
    )

    assert store.messages(conversation.id) == [question, failed, cut, huge, undecoded]
    assert failed.error == "cannot load x.gguf: unknown model architecture 'qwen9'"
    assert (cut.error, question.error) == (None, None)
    assert huge.error is not None and len(huge.error) == ERROR_LENGTH
    assert huge.error.startswith("\x1b[2Jxxx") and huge.error.endswith("x…")
    assert undecoded.error == "bad \\udcff byte"
    conn = sqlite3.connect(db_path)
    try:
        longest = conn.execute("SELECT max(length(error)) FROM messages").fetchone()[0]
    finally:
        conn.close()
    assert longest == ERROR_LENGTH


def test_conversations_are_listed_by_latest_activity(store: HistoryStore) -> None:
    assert store.latest_conversation() is None
    first = store.create_conversation("first", None, None, {})
    second = store.create_conversation("second", None, None, {})
    assert [c.id for c in store.list_conversations()] == [second.id, first.id]
    store.add_message(first.id, None, "user", "back to the first")
    assert [c.id for c in store.list_conversations()] == [first.id, second.id]
    assert [c.id for c in store.list_conversations(limit=1)] == [first.id]
    latest = store.latest_conversation()
    assert latest is not None and latest.id == first.id
    # Renaming is not activity.
    store.rename(second.id, "renamed")
    assert [c.title for c in store.list_conversations()] == ["first", "renamed"]


def test_regenerating_branches_and_the_newest_leaf_is_current(store: HistoryStore) -> None:
    conversation = store.create_conversation("t", None, None, {})
    system = store.add_message(conversation.id, None, "system", "Be brief.")
    question = store.add_message(conversation.id, system.id, "user", "Q")
    first = store.add_message(conversation.id, question.id, "assistant", "A1")
    second = store.add_message(conversation.id, question.id, "assistant", "A2")

    assert store.messages(conversation.id) == [system, question, first, second]
    assert store.current_branch(conversation.id) == [system, question, second]
    assert store.current_branch(conversation.id, first.id) == [system, question, first]

    follow_up = store.add_message(conversation.id, first.id, "user", "more on A1")
    assert store.current_branch(conversation.id) == [system, question, first, follow_up]
    assert store.current_branch(conversation.id, second.id) == [system, question, second]
    assert store.current_branch(store.create_conversation("e", None, None, {}).id) == []


def test_messages_keep_creation_order_when_the_clock_steps_back(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation = store.create_conversation("t", None, None, {})
    question = store.add_message(conversation.id, None, "user", "Q")
    first = store.add_message(conversation.id, question.id, "assistant", "A1")
    monkeypatch.setattr(time, "time", lambda: first.created_at - 3600)
    second = store.add_message(conversation.id, question.id, "assistant", "A2")
    assert store.current_branch(conversation.id) == [question, second]


def test_bad_calls_are_refused(store: HistoryStore) -> None:
    conversation = store.create_conversation("t", None, None, {})
    other = store.create_conversation("o", None, None, {})
    elsewhere = store.add_message(other.id, None, "user", "elsewhere")
    with pytest.raises(ConversationNotFoundError) as caught:
        store.add_message("nothere000", None, "user", "x")
    assert caught.value.exit_code == ExitCode.NOT_FOUND
    with pytest.raises(ValueError, match="not in"):
        store.add_message(conversation.id, elsewhere.id, "user", "x")
    with pytest.raises(ValueError, match="role"):
        store.add_message(conversation.id, None, "tool", "x")
    with pytest.raises(ValueError, match="finish reason"):
        store.add_message(conversation.id, None, "user", "x", finish_reason="stop")
    with pytest.raises(ValueError, match="finish reason"):
        store.add_message(conversation.id, None, "assistant", "x", finish_reason="bored")
    for role, finish_reason in (("assistant", "stop"), ("assistant", None), ("user", None)):
        with pytest.raises(ValueError, match="an error is only for a failed answer"):
            store.add_message(
                conversation.id, None, role, "x", finish_reason=finish_reason, error="boom"
            )
    with pytest.raises(ValueError, match="not in"):
        store.current_branch(conversation.id, elsewhere.id)
    for missing in (store.get_conversation, store.messages, store.export_conversation):
        with pytest.raises(ConversationNotFoundError, match="no conversation 'nothere000'"):
            missing("nothere000")
    with pytest.raises(ConversationNotFoundError):
        store.rename("nothere000", "x")
    assert store.messages(conversation.id) == []


@pytest.fixture
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], None]:
    def use(ids: list[str]) -> None:
        supply: Iterator[str] = iter(ids)
        monkeypatch.setattr(rows, "new_id", lambda: next(supply))

    return use


def test_an_id_prefix_resolves_when_unique(
    store: HistoryStore, fixed_ids: Callable[[list[str]], None]
) -> None:
    fixed_ids(["abc1000000", "abc2000000", "xyz0000000"])
    for _ in range(3):
        store.create_conversation("t", None, None, {})

    assert store.resolve_id("x") == "xyz0000000"
    assert store.resolve_id(" ABC1 ") == "abc1000000"
    assert store.resolve_id("abc2000000") == "abc2000000"
    with pytest.raises(UsageError, match=r"'abc' matches several.*abc1000000, abc2000000") as amb:
        store.resolve_id("abc")
    assert amb.value.exit_code == ExitCode.USAGE
    with pytest.raises(ConversationNotFoundError, match=r"^no conversation 'q'$"):
        store.resolve_id("q")
    with pytest.raises(UsageError, match="empty"):
        store.resolve_id("  ")


def test_an_id_already_taken_is_drawn_again(
    store: HistoryStore, fixed_ids: Callable[[list[str]], None]
) -> None:
    fixed_ids(["same000000", "same000000", "new0000000"])
    store.create_conversation("one", None, None, {})
    assert store.create_conversation("two", None, None, {}).id == "new0000000"


def test_ids_are_short_lowercase_and_distinct(store: HistoryStore) -> None:
    ids = {store.create_conversation("t", None, None, {}).id for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 10 and i.isalnum() and i == i.lower() for i in ids)


def test_deleting_cascades_to_messages_and_the_index(
    store: HistoryStore, db_path: Path, consistent: Callable[[Path], None]
) -> None:
    kept = store.create_conversation("kept zebra", None, None, {})
    gone = store.create_conversation("gone zebra", None, None, {})
    for conversation in (kept, gone):
        question = store.add_message(conversation.id, None, "user", "zebra 斑马条纹")
        store.add_message(conversation.id, question.id, "assistant", "stripes")

    assert store.delete([gone.id, gone.id, "nothere000"]) == 1
    assert [c.id for c in store.list_conversations()] == [kept.id]
    assert count(db_path, "messages") == 2
    assert {hit.conversation_id for hit in store.search("zebra")} == {kept.id}
    assert {hit.conversation_id for hit in store.search("斑马条纹")} == {kept.id}
    assert {hit.conversation_id for hit in store.search("斑马")} == {kept.id}
    assert store.delete([]) == 0
    consistent(db_path)


def test_renaming_updates_title_search(
    store: HistoryStore, db_path: Path, consistent: Callable[[Path], None]
) -> None:
    conversation = store.create_conversation("Old walrus name", None, None, {})
    store.rename(conversation.id, "New narwhal name 新しい名前")
    assert store.get_conversation(conversation.id).title == "New narwhal name 新しい名前"
    assert store.search("walrus") == []
    assert [hit.snippet for hit in store.search("narwhal")] == ["New [narwhal] name 新しい名前"]
    assert [hit.conversation_id for hit in store.search("新しい")] == [conversation.id]
    consistent(db_path)


def test_threads_can_share_one_store(store: HistoryStore) -> None:
    conversation = store.create_conversation("t", None, None, {})

    def write(n: int) -> None:
        for i in range(10):
            store.add_message(conversation.id, None, "user", f"{n}-{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.messages(conversation.id)) == 40


def test_params_are_stored_as_json(store: HistoryStore, db_path: Path) -> None:
    conversation = store.create_conversation("t", None, None, {"stop": ["\n"], "seed": 1})
    conn = sqlite3.connect(db_path)
    raw = conn.execute("SELECT params FROM conversations").fetchone()[0]
    conn.close()
    assert raw == '{"stop": ["\\n"], "seed": 1}'
    assert store.get_conversation(conversation.id).params == {"stop": ["\n"], "seed": 1}


def test_update_conversation_changes_only_the_fields_given(store: HistoryStore) -> None:
    older = store.create_conversation("older", "org/m:Q4_0", "Be brief.", {"top_k": 40})
    newer = store.create_conversation("newer", None, None, {})
    changed = store.update_conversation(older.id, model="org/other:Q8_0")
    assert (changed.model, changed.system_prompt, changed.params) == (
        "org/other:Q8_0",
        "Be brief.",
        {"top_k": 40},
    )
    changed = store.update_conversation(
        older.id, system_prompt="", params={"temperature": 0.0, "n_ctx": 1024}
    )
    assert store.get_conversation(older.id) == changed
    assert (changed.model, changed.system_prompt, changed.params) == (
        "org/other:Q8_0",
        "",
        {"temperature": 0.0, "n_ctx": 1024},
    )
    # Settings are not activity: the list keeps its order.
    assert changed.updated_at == older.updated_at
    assert [c.id for c in store.list_conversations()] == [newer.id, older.id]
    with pytest.raises(ConversationNotFoundError):
        store.update_conversation("nosuchid", model="x")
    with pytest.raises(ValueError):
        store.update_conversation(older.id, params={"temperature": float("nan")})
