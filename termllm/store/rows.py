"""Rows of the history tables to records and back: the SQL the repository's methods share."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

from termllm.errors import ConversationNotFoundError
from termllm.store.ids import is_id, new_id
from termllm.store.records import ConversationRecord, MessageRecord, finite_timings

CONVERSATION_SELECT = (
    "SELECT c.id, c.title, c.model, c.system_prompt, c.params, c.created_at, c.updated_at, "
    "(SELECT count(*) FROM messages AS m WHERE m.conversation_id = c.id), c.leaf_id "
    "FROM conversations AS c"
)
MESSAGE_COLUMNS = (
    "id, conversation_id, parent_id, role, content, model, created_at, "
    "prompt_tokens, completion_tokens, timings, finish_reason, error, reasoning, reasoning_tokens"
)


def unused_id(conn: sqlite3.Connection, table: Literal["conversations", "messages"]) -> str:
    # Checked under the write lock, so no other process can take the id before the insert.
    while True:
        candidate = new_id()
        if not row_exists(conn, table, candidate):
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
        f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({', '.join('?' * 14)})",
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
            message.reasoning,
            message.reasoning_tokens,
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
        # Rows saved before timings were checked may hold NaN, which no export may carry.
        timings=None if row[9] is None else finite_timings(json.loads(row[9])),
        finish_reason=row[10],
        error=row[11],
        reasoning=row[12],
        reasoning_tokens=row[13],
    )


def row_exists(
    conn: sqlite3.Connection, table: Literal["conversations", "messages"], row_id: str
) -> bool:
    found = conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (row_id,)).fetchone()
    return found is not None


def insert_imported(
    conn: sqlite3.Connection,
    conversation_id: str,
    exported: ConversationRecord,
    messages: Sequence[MessageRecord],
) -> ConversationRecord:
    """Add an imported conversation under `conversation_id`; each message keeps its id unless
    that is not of termllm's form or another message has it."""
    insert_conversation(
        conn,
        conversation_id,
        exported.title,
        exported.model,
        exported.system_prompt,
        json.dumps(exported.params, ensure_ascii=False),
        exported.created_at,
        exported.updated_at,
    )
    new_ids: dict[str, str] = {}
    for message in messages:
        keep = is_id(message.id) and not row_exists(conn, "messages", message.id)
        new_ids[message.id] = message.id if keep else unused_id(conn, "messages")
        parent_id = None if message.parent_id is None else new_ids[message.parent_id]
        insert_message(
            conn,
            replace(
                message,
                id=new_ids[message.id],
                conversation_id=conversation_id,
                parent_id=parent_id,
            ),
        )
    if exported.leaf_id is not None:
        conn.execute(
            "UPDATE conversations SET leaf_id = ? WHERE id = ?",
            (new_ids[exported.leaf_id], conversation_id),
        )
    return require_conversation(conn, conversation_id)
