"""Export to JSON and import back: every field survives, ids are kept, a conversation already
held is not added twice, bad files are refused."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from termllm.errors import ExitCode, UsageError
from termllm.store import ConversationRecord, ExportFormatError, HistoryStore
from termllm.store.records import ERROR_LENGTH


@pytest.fixture
def other(tmp_path: Path) -> Iterator[HistoryStore]:
    """Another machine's history, to import into."""
    with HistoryStore.open(tmp_path / "other" / "history.db") as opened:
        yield opened


def import_one(store: HistoryStore, data: Mapping[str, object]) -> ConversationRecord:
    [imported] = store.import_conversations([data]).imported
    return imported


def build(store: HistoryStore) -> str:
    conversation = store.create_conversation(
        "Branches 分岐", "org/m:Q4_K_M", "Be brief.", {"temperature": 0.7, "stop": ["\n\n"]}
    )
    system = store.add_message(conversation.id, None, "system", "Be brief.")
    question = store.add_message(conversation.id, system.id, "user", "Name a colour")
    store.add_message(
        conversation.id,
        question.id,
        "assistant",
        "Red",
        model="org/m:Q4_K_M",
        prompt_tokens=20,
        completion_tokens=2,
        timings={"ttft_ms": 31.5, "decode_tokens_per_s": 90.0},
        finish_reason="stop",
    )
    store.add_message(
        conversation.id, question.id, "assistant", "Bl", model="x", finish_reason="cancelled"
    )
    return conversation.id


def test_export_then_import_reproduces_the_conversation_with_its_ids(
    store: HistoryStore, other: HistoryStore
) -> None:
    original_id = build(store)
    exported = store.export_conversation(original_id)
    assert (exported["format"], exported["version"]) == ("termllm.conversation", 1)

    imported = import_one(other, json.loads(json.dumps(exported)))
    assert imported.id == original_id and imported.message_count == 4
    assert other.export_conversation(imported.id) == exported

    # Into a history that holds it, nor a second time, it is not added again.
    for target in (store, other):
        result = target.import_conversations([exported])
        assert (result.imported, result.skipped) == ((), (original_id,))
        assert len(target.list_conversations()) == 1
    assert store.export_conversation(original_id) == exported


def test_a_restored_conversation_gets_its_id_back(store: HistoryStore) -> None:
    original_id = build(store)
    exported = store.export_conversation(original_id)
    store.delete([original_id])
    assert import_one(store, exported).id == original_id
    assert store.export_conversation(original_id) == exported


def test_imported_branches_keep_their_shape(store: HistoryStore, other: HistoryStore) -> None:
    imported = import_one(other, store.export_conversation(build(store)))
    branch = other.current_branch(imported.id)
    assert [m.content for m in branch] == ["Be brief.", "Name a colour", "Bl"]
    assert [hit.conversation_id for hit in other.search("分岐")] != []


def test_a_failed_answer_keeps_its_error_through_export_and_import(
    store: HistoryStore, other: HistoryStore
) -> None:
    conversation_id = build(store)
    question = store.current_branch(conversation_id)[1]
    reason = "cannot load x.gguf: unknown model architecture"
    store.add_message(
        conversation_id, question.id, "assistant", "", finish_reason="error", error=reason
    )
    exported = json.loads(json.dumps(store.export_conversation(conversation_id)))
    messages = exported["messages"]
    assert [m["error"] for m in messages] == [None] * 4 + [reason]

    imported = import_one(other, exported)
    assert [m.error for m in other.messages(imported.id)] == [None] * 4 + [reason]
    # Exports from before errors were kept have no such field.
    for message in messages:
        del message["error"]
    exported["conversation"]["id"] = "older"
    older = import_one(other, exported)
    assert [m.error for m in other.messages(older.id)] == [None] * 5


def test_an_imported_error_is_held_to_the_same_bound(
    store: HistoryStore, other: HistoryStore
) -> None:
    conversation_id = build(store)
    question = store.current_branch(conversation_id)[1]
    store.add_message(conversation_id, question.id, "assistant", "", finish_reason="error")
    exported = store.export_conversation(conversation_id)
    messages = exported["messages"]
    assert isinstance(messages, list)
    messages[-1]["error"] = "y" * 100_000

    imported = import_one(other, exported)
    error = other.messages(imported.id)[-1].error
    assert error is not None and len(error) == ERROR_LENGTH and error.endswith("y…")


Change = Callable[[dict[str, Any]], object]


def set_in(path: tuple[object, ...], value: object) -> Change:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (set_in(("format",), "something.else"), "'format' must be 'termllm.conversation'"),
        (set_in(("version",), 2), "export version 2 is not 1"),
        (set_in(("version",), True), "export version True is not 1"),
        (set_in(("conversation",), []), "conversation must be an object"),
        (set_in(("conversation", "title"), None), "conversation.title must be a string"),
        (set_in(("conversation", "params"), [1]), "conversation.params must be an object"),
        (set_in(("conversation", "created_at"), "yesterday"), "conversation.created_at must"),
        (set_in(("conversation", "updated_at"), float("nan")), "conversation.updated_at must"),
        (set_in(("messages",), {}), "'messages' must be a list"),
        (set_in(("messages", 1), "hi"), r"messages\[1\] must be an object"),
        (set_in(("messages", 1, "role"), "tool"), r"messages\[1\]\.role must be one of"),
        (set_in(("messages", 1, "content"), 5), r"messages\[1\]\.content must be a string"),
        (set_in(("messages", 1, "parent_id"), "nowhere"), "is not a message before it"),
        (set_in(("messages", 0, "parent_id"), "LAST"), "is not a message before it"),
        (set_in(("messages", 1, "id"), "FIRST"), r"messages\[1\]\.id .* is used twice"),
        (set_in(("messages", 2, "prompt_tokens"), -1), "prompt_tokens must be a whole number"),
        (set_in(("messages", 2, "completion_tokens"), True), "completion_tokens must be"),
        (set_in(("messages", 2, "timings"), {"ttft_ms": "fast"}), "timings must be an object"),
        (set_in(("messages", 2, "finish_reason"), "bored"), "finish_reason must be one of"),
        (
            set_in(("messages", 1, "finish_reason"), "stop"),
            "finish_reason is only for assistant messages",
        ),
        (set_in(("messages", 3, "error"), 5), r"messages\[3\]\.error must be a string or null"),
        (
            set_in(("messages", 3, "error"), "boom"),
            r"messages\[3\]\.error is only for answers whose finish_reason is 'error'",
        ),
    ],
)
def test_malformed_exports_are_refused_with_a_reason(
    store: HistoryStore, change: Change, reason: str
) -> None:
    data = copy.deepcopy(store.export_conversation(build(store)))
    change(data)
    # FIRST and LAST stand for ids that exist only once exported.
    original = store.export_conversation(store.list_conversations()[0].id)["messages"]
    assert isinstance(original, list)
    placeholders = {"FIRST": original[0]["id"], "LAST": original[-1]["id"]}
    for message in data["messages"] if isinstance(data["messages"], list) else []:
        for key in ("id", "parent_id") if isinstance(message, dict) else ():
            message[key] = placeholders.get(message[key], message[key])

    with pytest.raises(UsageError, match=reason) as caught:
        store.import_conversations([data])
    assert isinstance(caught.value, ExportFormatError)
    assert caught.value.exit_code == ExitCode.USAGE
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("not an importable termllm conversation: ")
    assert len(store.list_conversations()) == 1


def test_data_that_is_not_an_object_is_refused(store: HistoryStore) -> None:
    with pytest.raises(ExportFormatError, match="expected a JSON object"):
        store.import_conversations([[]])
