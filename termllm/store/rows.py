"""Rows of the history tables to records and back: the SQL the repository's methods share."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Literal

from termllm.errors import ConversationNotFoundError
from termllm.store.ids import new_id
from termllm.store.records import ConversationRecord, MessageRecord

CONVERSATION_SELECT = (
    "SELECT c.id, c.title, c.model, c.system_prompt, c.params, c.created_at, c.updated_at, "
    "(SELECT count(*) FROM messages AS m WHERE m.conversation_id = c.id), c.leaf_id "
    "FROM conversations AS c"
)
MESSAGE_COLUMNS = (
    "id, conversation_id, parent_id, role, content, model, created_at, "
    "prompt_tokens, completion_tokens, timings, finish_reason, error"
)


def unused_id(conn: sqlite3.Connection, table: Literal["conversations", "messages"]) -> str:
    # Checked under the write lock, so no other process can take the id before the insert.
    while True:
        candidate = new_id()
        if conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (candidate,)).fetchone() is None:
            return candidate


def insert_conversation(
    conn: sqlite3.Connection,
    conversation_id: str,
    title: str,
    model: str | None,
    system_prompt: str | None,
    params_json: str,
    created_at: float,
    updated_at: float,
) -> None:
    conn.execute(
        "INSERT INTO conversations (id, title, model, system_prompt, params, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (conversation_id, title, model, system_prompt, params_json, created_at, updated_at),
    )


def insert_message(conn: sqlite3.Connection, message: MessageRecord) -> None:
    conn.execute(
        f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            message.id,
            message.conversation_id,
            message.parent_id,
            message.role,
            message.content,
            message.model,
            message.created_at,
            message.prompt_tokens,
            message.completion_tokens,
            None if message.timings is None else json.dumps(message.timings),
            message.finish_reason,
            message.error,
        ),
    )


def require_conversation(conn: sqlite3.Connection, conversation_id: str) -> ConversationRecord:
    row = conn.execute(f"{CONVERSATION_SELECT} WHERE c.id = ?", (conversation_id,)).fetchone()
    if row is None:
        raise ConversationNotFoundError(f"no conversation '{conversation_id}'")
    return conversation_from_row(row)


def messages_of(conn: sqlite3.Connection, conversation_id: str) -> list[MessageRecord]:
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? "
        "ORDER BY created_at, seq",
        (conversation_id,),
    ).fetchall()
    return [message_from_row(row) for row in rows]


def conversation_from_row(row: Sequence[Any]) -> ConversationRecord:
    return ConversationRecord(
        id=row[0],
        title=row[1],
        model=row[2],
        system_prompt=row[3],
        params=json.loads(row[4]),
        created_at=row[5],
        updated_at=row[6],
        message_count=row[7],
        leaf_id=row[8],
    )


def message_from_row(row: Sequence[Any]) -> MessageRecord:
    return MessageRecord(
        id=row[0],
        conversation_id=row[1],
        parent_id=row[2],
        role=row[3],
        content=row[4],
        model=row[5],
        created_at=row[6],
        prompt_tokens=row[7],
        completion_tokens=row[8],
        timings=None if row[9] is None else json.loads(row[9]),
        finish_reason=row[10],
        error=row[11],
    )
