"""Branches of a conversation: messages that share a parent are alternatives (regenerated answers,
edited questions), and the conversation's leaf says which branch is current."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from termllm.store.records import MessageRecord
from termllm.store.rows import MESSAGE_COLUMNS, message_from_row


def branch_to(messages: Sequence[MessageRecord], leaf: MessageRecord) -> list[MessageRecord]:
    """The messages from the root down to `leaf`; `messages` holds every one of its ancestors."""
    by_id = {message.id: message for message in messages}
    branch: list[MessageRecord] = []
    node: MessageRecord | None = leaf
    while node is not None:
        branch.append(node)
        node = None if node.parent_id is None else by_id[node.parent_id]
    return branch[::-1]


def current_leaf(messages: Sequence[MessageRecord], chosen_id: str | None) -> MessageRecord | None:
    """The chosen leaf when it is one of `messages` (oldest first), else the newest message."""
    for message in messages:
        if message.id == chosen_id:
            return message
    return messages[-1] if messages else None


def message_in(conn: sqlite3.Connection, conversation_id: str, message_id: str) -> MessageRecord:
    row = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ? AND conversation_id = ?",
        (message_id, conversation_id),
    ).fetchone()
    if row is None:
        raise ValueError(f"message {message_id!r} is not in {conversation_id!r}")
    return message_from_row(row)


def siblings(conn: sqlite3.Connection, message: MessageRecord) -> list[MessageRecord]:
    """The messages with the parent and role of `message` (itself included), oldest first."""
    rows = conn.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? "
        "AND parent_id IS ? AND role = ? ORDER BY created_at, seq",
        (message.conversation_id, message.parent_id, message.role),
    ).fetchall()
    return [message_from_row(row) for row in rows]


def newest_under(conn: sqlite3.Connection, message_id: str) -> str:
    """The newest message in the subtree of `message_id` (itself included): always a leaf, as a
    reply is never older than what it answers."""
    found: str = conn.execute(
        """WITH RECURSIVE subtree (id) AS (
            SELECT ?
            UNION ALL
            SELECT m.id FROM messages AS m JOIN subtree AS s ON m.parent_id = s.id
        )
        SELECT m.id FROM messages AS m JOIN subtree USING (id)
        ORDER BY m.created_at DESC, m.seq DESC LIMIT 1""",
        (message_id,),
    ).fetchone()[0]
    return found
