"""Imports written by anyone: values that would crash a later step are refused, a file is
imported all or nothing and never twice, and a long import lets other writers in."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from termllm.errors import ExitCode, StorageError
from termllm.store import (
    ConversationRecord,
    ExportFormatError,
    HistoryStore,
    MessageRecord,
    repository,
)

Export = dict[str, Any]


def cid(n: int) -> str:
    """An id of termllm's form."""
    return f"c{n:09d}"


def export(conversation_id: str = cid(1), title: str = "t", **message: Any) -> Export:
    """A small export as a file would hold it: a question and its answer, whose ids have
    termllm's form when the conversation's has."""
    answer = {
        "id": f"a{conversation_id[1:]}",
        "parent_id": f"q{conversation_id[1:]}",
        "role": "assistant",
        "content": "Red",
        "model": "org/m:Q4_K_M",
        "created_at": 1_700_000_001.0,
        "prompt_tokens": 12,
        "completion_tokens": 1,
        "timings": {"ttft_ms": 30.0},
        "finish_reason": "stop",
        **message,
    }
    return {
        "format": "termllm.conversation",
        "version": 1,
        "conversation": {
            "id": conversation_id,
            "title": title,
            "model": "org/m:Q4_K_M",
            "system_prompt": None,
            "params": {"temperature": 0.7},
            "created_at": 1_700_000_000.0,
            "updated_at": 1_700_000_001.0,
        },
        "messages": [
            {
                "id": f"q{conversation_id[1:]}",
                "parent_id": None,
                "role": "user",
                "content": "Name a colour",
                "model": None,
                "created_at": 1_700_000_000.0,
                "prompt_tokens": None,
                "completion_tokens": None,
                "timings": None,
                "finish_reason": None,
            },
            answer,
        ],
    }


def from_json_text(text: str) -> Export:
    """Parsed as `history import` parses a file (Python's JSON reads NaN and 400 digits)."""
    data: Export = json.loads(text)
    return data


def import_one(store: HistoryStore, data: Export) -> ConversationRecord:
    [imported] = store.import_conversations([data]).imported
    return imported


def in_conversation(path: tuple[str, ...], value: Any) -> Callable[[Export], None]:
    def change(data: Export) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def short(value: object) -> str:
    """A test id: the value, or "text" for a whole file's text."""
    text = str(value)
    return text if len(text) <= 80 else "text"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # JSON can spell a lone surrogate; SQLite's UTF-8 (and a terminal) cannot hold it.
        (json.dumps(export(title="x")).replace('"x"', '"\\ud800"'), "title must be text"),
        (json.dumps(export()).replace('"Red"', '"a\\udfffb"'), r"messages\[1\]\.content must"),
        (
            json.dumps(export()).replace('"ttft_ms"', '"\\ud83d"'),
            r"messages\[1\]\.timings must be an object of numbers",
        ),
        (
            json.dumps(export()).replace('"temperature"', '"\\udc00"'),
            "conversation.params must be text",
        ),
        # Whole numbers larger than a float, or than SQLite stores.
        (
            json.dumps(export()).replace("1700000000.0", "1" * 400, 1),
            "conversation.created_at must be a number of seconds since 1970",
        ),
        (json.dumps(export(prompt_tokens=2**63)), "prompt_tokens must be a whole number"),
        (json.dumps(export(completion_tokens=2**53)), "completion_tokens must be a whole"),
        (json.dumps(export(timings={"ttft_ms": 10**400})), "timings must be an object"),
        # Times no date can show.
        (json.dumps(export(created_at=-1.0)), r"messages\[1\]\.created_at must be"),
        (json.dumps(export(created_at=1e20)), r"messages\[1\]\.created_at must be"),
        (json.dumps(export(created_at=float("inf"))), r"messages\[1\]\.created_at must be"),
        # Settings nested past what any reader of them should have to recurse through.
        (
            json.dumps(export()).replace(
                '{"temperature": 0.7}', '{"a": ' + "[" * 500 + "]" * 500 + "}"
            ),
            "conversation.params must be an object nested at most 8 deep",
        ),
    ],
    ids=short,
)
def test_values_that_would_fail_later_are_refused_naming_the_field(
    store: HistoryStore, text: str, reason: str
) -> None:
    with pytest.raises(ExportFormatError, match=reason) as caught:
        store.import_conversations([from_json_text(text)])
    assert caught.value.exit_code == ExitCode.USAGE
    assert "\n" not in str(caught.value)
    assert store.list_conversations() == []


def test_an_error_quotes_a_bounded_safe_excerpt_of_the_value(store: HistoryStore) -> None:
    data = export()
    data["conversation"]["leaf_id"] = "\x1b[2J" + "x" * 100_000
    with pytest.raises(ExportFormatError) as caught:
        store.import_conversations([data])
    assert "\x1b" not in str(caught.value) and len(str(caught.value)) < 200


def test_timings_that_are_not_numbers_json_has_are_left_out(
    store: HistoryStore, db_path: Path
) -> None:
    text = json.dumps(export(timings={"ttft_ms": float("nan"), "load_ms": float("inf"), "x": 2}))
    assert "NaN" in text and "Infinity" in text
    imported = import_one(store, from_json_text(text))
    assert store.messages(imported.id)[-1].timings == {"x": 2.0}
    # A row saved with NaN before this check existed exports as JSON too.
    with contextlib.closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute(
            'UPDATE messages SET timings = \'{"ttft_ms": NaN, "load_ms": 5.0}\' '
            "WHERE timings IS NOT NULL"
        )
    saved = store.add_message(imported.id, None, "assistant", "x", timings={"a": float("nan")})
    assert saved.timings == {}
    exported = json.dumps(store.export_conversation(imported.id), allow_nan=False)
    timings = [m["timings"] for m in json.loads(exported)["messages"]]
    assert timings == [None, {"load_ms": 5.0}, {}]


@pytest.mark.parametrize(
    "model",
    [
        "../../../../etc/passwd",
        "/etc/passwd",
        "./notes.txt",
        "~root/.ssh/id_rsa",
        "owner/repo:Q4 K M",
        "\x1b[2Jsmol",
        "x" * 1000,
        "",
    ],
    ids=short,
)
@pytest.mark.parametrize("where", ["conversation", "message"])
def test_a_model_reference_that_is_no_model_is_refused(
    store: HistoryStore, model: str, where: str
) -> None:
    data = export(model=model) if where == "message" else export()
    if where == "conversation":
        data["conversation"]["model"] = model
    with pytest.raises(ExportFormatError, match="model must be a model reference"):
        store.import_conversations([data])
    assert store.list_conversations() == []


@pytest.mark.parametrize(
    ("model", "kept"),
    [
        (
            "bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M",
            "bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M",
        ),
        ("org/repo/sub/file-Q8_0.gguf", "org/repo/sub/file-Q8_0.gguf"),
        ("smollm2-135m-instruct", "smollm2-135m-instruct"),
        # A path to a model file, which means nothing on another machine: the model's name.
        ("/home/someone/models/Tiny-Q4_0.gguf", "Tiny-Q4_0"),
        ("../models/big-00001-of-00002.gguf", "big"),
        ("~someone/Tiny.gguf", "Tiny"),
    ],
)
def test_a_model_is_kept_by_reference_or_name(store: HistoryStore, model: str, kept: str) -> None:
    data = export(model=model)
    data["conversation"]["model"] = model
    imported = import_one(store, data)
    assert imported.model == kept
    assert store.messages(imported.id)[-1].model == kept


def three(broken: bool) -> list[Export]:
    third = export(cid(3), "three", role="tool" if broken else "assistant")
    return [export(cid(1), "one"), export(cid(2), "two"), third]


def test_a_file_with_one_bad_conversation_adds_none(store: HistoryStore) -> None:
    with pytest.raises(ExportFormatError, match=r"conversations\[2\]: messages\[1\]\.role"):
        store.import_conversations(three(broken=True))
    assert store.list_conversations() == []

    result = store.import_conversations(three(broken=False))
    assert [c.title for c in result.imported] == ["one", "two", "three"]
    assert [c.id for c in result.imported] == [cid(1), cid(2), cid(3)]
    assert result.skipped == ()


def test_importing_a_file_again_adds_nothing_twice(store: HistoryStore) -> None:
    store.import_conversations(three(broken=False))
    again = store.import_conversations(three(broken=False))
    assert again.imported == ()
    assert again.skipped == (cid(1), cid(2), cid(3))
    assert len(store.list_conversations()) == 3


def test_ids_not_of_termllm_form_are_replaced_the_same_way_each_time(
    store: HistoryStore,
) -> None:
    data = export("c1", "hand written")
    first = import_one(store, data)
    assert first.id != "c1" and len(first.id) == 10
    assert [m.id for m in store.messages(first.id)] != ["q1", "a1"]
    assert store.resolve_id(first.id[:4]) == first.id
    again = store.import_conversations([data])
    assert (again.imported, again.skipped) == ((), (first.id,))

    # A message keeps its id, unless another message has it.
    kept = import_one(store, export(cid(1), "first"))
    assert [m.id for m in store.messages(kept.id)] == [f"q{cid(1)[1:]}", f"a{cid(1)[1:]}"]
    other = export(cid(9), "same message ids")
    for message in other["messages"]:
        for key in ("id", "parent_id"):
            if message[key]:
                message[key] = message[key][0] + cid(1)[1:]
    copied = store.messages(import_one(store, other).id)
    assert {m.id for m in copied}.isdisjoint({f"q{cid(1)[1:]}", f"a{cid(1)[1:]}"})
    assert copied[1].parent_id == copied[0].id


def test_a_failure_while_writing_removes_what_the_import_had_added(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch, consistent: Callable[[Path], None]
) -> None:
    # One conversation per transaction, so the first two are committed when the third fails.
    monkeypatch.setattr(repository, "IMPORT_BATCH_S", 0.0)
    monkeypatch.setattr(repository, "IMPORT_PAUSE_S", 0.0)
    real_insert = repository.insert_imported
    calls: list[str] = []

    def insert(conn: sqlite3.Connection, *args: Any) -> ConversationRecord:
        calls.append(args[0])
        if len(calls) == 3:
            raise sqlite3.OperationalError("database or disk is full")
        return real_insert(conn, *args)

    monkeypatch.setattr(repository, "insert_imported", insert)
    with pytest.raises(StorageError, match="disk is full"):
        store.import_conversations(three(broken=False))
    assert store.list_conversations() == []
    consistent(store.path)


def test_a_long_import_lets_another_writer_in_between_its_batches(
    store: HistoryStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repository, "IMPORT_BATCH_S", 0.0)
    existing = store.create_conversation("mine", None, None, {})
    exports = [export(cid(n), f"imported {n}") for n in range(20)]
    started = threading.Event()
    real_insert = repository.insert_imported

    def insert(conn: sqlite3.Connection, *args: Any) -> ConversationRecord:
        started.set()
        return real_insert(conn, *args)

    monkeypatch.setattr(repository, "insert_imported", insert)
    # The importer is another process's connection: it shares only the file.
    with HistoryStore.open(db_path) as importer:
        worker = threading.Thread(target=importer.import_conversations, args=(exports,))
        worker.start()
        assert started.wait(30)
        question: MessageRecord = store.add_message(existing.id, None, "user", "still there?")
        worker.join(60)
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        seqs = dict(conn.execute("SELECT id, seq FROM messages").fetchall())
    imported_seqs = [seq for message_id, seq in seqs.items() if message_id != question.id]
    assert len(imported_seqs) == 40
    # Saved while the import was still running, not after it.
    assert seqs[question.id] < max(imported_seqs)
