"""The history store: conversations and their messages in one SQLite file that every termllm
process (each `ask`, the TUI) opens and writes at the same time.

Every write is one short transaction, committed before the method returns (an import, which
may be long, is several: see `import_conversations`). Messages are never edited: regenerating
or editing adds a sibling under the same parent, so old answers stay.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from termllm.errors import ConversationNotFoundError, StorageError, UsageError
from termllm.store import search as fulltext
from termllm.store.branches import branch_to, current_leaf, message_in, newest_under, siblings
from termllm.store.connection import sqlite_errors, transaction
from termllm.store.exchange import parse_exports, to_export
from termllm.store.ids import derived_id, is_id
from termllm.store.opening import open_history
from termllm.store.records import (
    FINISH_REASONS,
    ROLES,
    ConversationRecord,
    ImportResult,
    MessageRecord,
    SearchHit,
    bounded_error,
    finite_timings,
)
from termllm.store.rows import (
    CONVERSATION_SELECT,
    conversation_from_row,
    insert_conversation,
    insert_imported,
    insert_message,
    messages_of,
    require_conversation,
    row_exists,
    unused_id,
)

__all__ = ["ConversationRecord", "HistoryStore", "MessageRecord", "SearchHit"]

# Most ids the "ambiguous prefix" error lists.
_SHOWN_CANDIDATES = 5
# An import commits after about this long and lets other writers in before going on, so a
# large file delays a concurrent `ask` by this much rather than by the whole import.
IMPORT_BATCH_S = 0.5
# Longer than the 100 ms SQLite's busy handler sleeps between tries once it has waited a
# while: a writer waiting for the lock finds it free at least once between two batches.
IMPORT_PAUSE_S = 0.15


class HistoryStore:
    """Open with `HistoryStore.open(path)`; safe to share between threads of one process."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        backup_path: Path | None,
        read_only: StorageError | None = None,
    ) -> None:
        self._conn = conn
        self._path = path
        self._lock = threading.Lock()
        self.backup_path = backup_path
        """The copy made before this open migrated an older schema, if it did."""
        self.read_only = read_only
        """Why this history can only be read (what every write raises), or None."""

    @classmethod
    def open(cls, path: Path) -> HistoryStore:
        """Open (creating the file and its folders if needed) and bring the schema up to date.

        Where the history cannot be written (a read-only folder or file, a full disk) it is
        opened to be read, as browsing needs: every read works, and every write raises a
        StorageError that says why (see opening.py).
        """
        opened = open_history(path)
        return cls(opened.conn, path, opened.backup_path, opened.read_only)

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        if write and self.read_only is not None:
            raise StorageError(f"cannot save to the history: {self.read_only.message}")
        with self._lock, sqlite_errors(self._path), transaction(self._conn, write=write) as conn:
            yield conn

    def create_conversation(
        self,
        title: str,
        model: str | None,
        system_prompt: str | None,
        params: Mapping[str, object],
    ) -> ConversationRecord:
        params_json = json.dumps(dict(params), ensure_ascii=False, allow_nan=False)
        now = time.time()
        with self._transaction(write=True) as conn:
            conversation_id = unused_id(conn, "conversations")
            insert_conversation(
                conn, conversation_id, title, model, system_prompt, params_json, now, now
            )
        return ConversationRecord(
            conversation_id, title, model, system_prompt, json.loads(params_json), now, now, 0
        )

    def add_message(
        self,
        conversation_id: str,
        parent_id: str | None,
        role: str,
        content: str,
        *,
        model: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        timings: Mapping[str, float] | None = None,
        finish_reason: str | None = None,
        error: str | None = None,
        reasoning: str | None = None,
        reasoning_tokens: int | None = None,
    ) -> MessageRecord:
        """Save one message, durably, and make it the conversation's newest activity.

        `error` says why an answer failed; it is cut to ERROR_LENGTH characters. A parent from
        another conversation, an unknown role or finish reason, a finish reason on anything but
        an assistant message, an error on anything but one whose finish reason is "error", or
        reasoning on anything but an assistant message is a caller's bug (ValueError).
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if finish_reason is not None and (
            role != "assistant" or finish_reason not in FINISH_REASONS
        ):
            raise ValueError(f"finish reason {finish_reason!r} does not fit a {role} message")
        if error is not None and finish_reason != "error":
            raise ValueError(
                f"an error is only for a failed answer, not a {role} message with finish "
                f"reason {finish_reason!r}"
            )
        if (reasoning is not None or reasoning_tokens is not None) and role != "assistant":
            raise ValueError(f"reasoning is only for answers, not a {role} message")
        with self._transaction(write=True) as conn:
            require_conversation(conn, conversation_id)
            if parent_id is not None:
                row = conn.execute(
                    "SELECT conversation_id FROM messages WHERE id = ?", (parent_id,)
                ).fetchone()
                if row is None or row[0] != conversation_id:
                    raise ValueError(f"message {parent_id!r} is not in {conversation_id!r}")
            # Never earlier than the conversation's newest message, even if the clock stepped
            # back: "newest" decides which branch is current.
            newest = conn.execute(
                "SELECT max(created_at) FROM messages WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()[0]
            message = MessageRecord(
                id=unused_id(conn, "messages"),
                conversation_id=conversation_id,
                parent_id=parent_id,
                role=role,
                content=content,
                model=model,
                created_at=max(time.time(), newest or 0.0),
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                timings=None if timings is None else finite_timings(timings),
                finish_reason=finish_reason,
                error=None if error is None else bounded_error(error),
                reasoning=reasoning or None,
                reasoning_tokens=reasoning_tokens,
            )
            insert_message(conn, message)
            # The new message is the newest, so its branch becomes the current one.
            conn.execute(
                "UPDATE conversations SET updated_at = max(updated_at, ?), leaf_id = NULL "
                "WHERE id = ?",
                (message.created_at, conversation_id),
            )
        return message

    def get_conversation(self, conversation_id: str) -> ConversationRecord:
        with self._transaction(write=False) as conn:
            return require_conversation(conn, conversation_id)

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one conversation whose id starts with `prefix`."""
        wanted = prefix.strip().lower()
        if not wanted:
            raise UsageError("a conversation id cannot be empty")
        with self._transaction(write=False) as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM conversations WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT ?",
                    (len(wanted), wanted, _SHOWN_CANDIDATES + 1),
                )
            ]
        if not ids:
            raise ConversationNotFoundError(f"no conversation '{prefix}'")
        if len(ids) > 1:
            shown = ", ".join(ids[:_SHOWN_CANDIDATES])
            more = ", …" if len(ids) > _SHOWN_CANDIDATES else ""
            raise UsageError(
                f"'{prefix}' matches several conversations ({shown}{more}); give more of the id"
            )
        found: str = ids[0]
        return found

    def latest_conversation(self) -> ConversationRecord | None:
        conversations = self.list_conversations(limit=1)
        return conversations[0] if conversations else None

    def list_conversations(self, limit: int | None = None) -> list[ConversationRecord]:
        """Most recently active first."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                f"{CONVERSATION_SELECT} ORDER BY c.updated_at DESC, c.seq DESC LIMIT ?",
                (-1 if limit is None else max(limit, 0),),
            ).fetchall()
        return [conversation_from_row(row) for row in rows]

    def messages(self, conversation_id: str) -> list[MessageRecord]:
        """Every message of every branch, oldest first."""
        with self._transaction(write=False) as conn:
            require_conversation(conn, conversation_id)
            return messages_of(conn, conversation_id)

    def current_branch(
        self, conversation_id: str, leaf_id: str | None = None
    ) -> list[MessageRecord]:
        """The messages from the root down to `leaf_id` (default: the conversation's current
        leaf, which is the newest message unless the user chose another branch)."""
        return self.messages_and_branch(conversation_id, leaf_id)[1]

    def messages_and_branch(
        self, conversation_id: str, leaf_id: str | None = None
    ) -> tuple[list[MessageRecord], list[MessageRecord]]:
        """Every message and the branch down to `leaf_id` (as in `current_branch`), read in one
        transaction: another process adding a message in between cannot make them disagree."""
        with self._transaction(write=False) as conn:
            conversation = require_conversation(conn, conversation_id)
            every = messages_of(conn, conversation_id)
        if leaf_id is not None and leaf_id not in {message.id for message in every}:
            raise ValueError(f"message {leaf_id!r} is not in {conversation_id!r}")
        leaf = current_leaf(every, leaf_id or conversation.leaf_id)
        return every, [] if leaf is None else branch_to(every, leaf)

    def alternatives(self, conversation_id: str, message_id: str) -> list[MessageRecord]:
        """The messages with the parent and role of `message_id`, itself included, oldest
        first: the answers a question got, or the versions of an edited question."""
        with self._transaction(write=False) as conn:
            return siblings(conn, message_in(conn, conversation_id, message_id))

    def select_branch(self, conversation_id: str, message_id: str) -> str:
        """Make the branch through `message_id` current, down to the newest message below it
        (what the user last saw there); returns that leaf's id."""
        with self._transaction(write=True) as conn:
            message_in(conn, conversation_id, message_id)
            leaf_id = newest_under(conn, message_id)
            conn.execute(
                "UPDATE conversations SET leaf_id = ? WHERE id = ?", (leaf_id, conversation_id)
            )
        return leaf_id

    def search(
        self, query: str, limit: int = 20, *, prefix: bool = False, reasoning: bool = False
    ) -> list[SearchHit]:
        """Messages and titles (and, with `reasoning`, answers' reasoning) matching every term
        of `query`, best first (see search.py)."""
        with self._transaction(write=False) as conn:
            return fulltext.search(conn, query, limit, prefix=prefix, reasoning=reasoning)

    def recent_prompts(self, limit: int) -> list[str]:
        """The user's distinct prompts across all conversations, most recently sent first."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT content FROM messages WHERE role = 'user' "
                "GROUP BY content ORDER BY max(created_at) DESC, max(seq) DESC LIMIT ?",
                (max(limit, 0),),
            ).fetchall()
        return [row[0] for row in rows]

    def rename(self, conversation_id: str, title: str) -> None:
        with self._transaction(write=True) as conn:
            changed = conn.execute(
                "UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id)
            ).rowcount
            if not changed:
                raise ConversationNotFoundError(f"no conversation '{conversation_id}'")

    def update_conversation(
        self,
        conversation_id: str,
        *,
        model: str | None = None,
        system_prompt: str | None = None,
        params: Mapping[str, object] | None = None,
    ) -> ConversationRecord:
        """Change the fields given (None leaves one as it is). Like a rename, this is not
        activity: `updated_at`, and so the conversation's place in the list, stays."""
        changes: dict[str, object] = {}
        if model is not None:
            changes["model"] = model
        if system_prompt is not None:
            changes["system_prompt"] = system_prompt
        if params is not None:
            changes["params"] = json.dumps(dict(params), ensure_ascii=False, allow_nan=False)
        with self._transaction(write=True) as conn:
            if changes:
                # The column names come from the fixed keys above, never from the caller.
                assignments = ", ".join(f"{column} = ?" for column in changes)
                conn.execute(
                    f"UPDATE conversations SET {assignments} WHERE id = ?",
                    (*changes.values(), conversation_id),
                )
            return require_conversation(conn, conversation_id)

    def delete(self, conversation_ids: Sequence[str]) -> int:
        """Delete conversations with their messages; returns how many existed."""
        with self._transaction(write=True) as conn:
            deleted: int = conn.executemany(
                "DELETE FROM conversations WHERE id = ?",
                [(conversation_id,) for conversation_id in dict.fromkeys(conversation_ids)],
            ).rowcount
        return deleted

    def export_conversation(self, conversation_id: str) -> dict[str, object]:
        """A JSON-ready copy of the conversation and all its messages (see exchange.py)."""
        with self._transaction(write=False) as conn:
            conversation = require_conversation(conn, conversation_id)
            return to_export(conversation, messages_of(conn, conversation_id))

    def import_conversations(self, exports: Sequence[object]) -> ImportResult:
        """Add exported conversations (see exchange.py), all or none.

        Every export is checked before anything is written: one that is not importable raises
        ExportFormatError naming it, and nothing is added. A conversation keeps its id (one not
        of termllm's form gets an id derived from it), and one whose id the history already
        holds is skipped: importing a file again adds nothing twice, and restoring a deleted
        conversation gives it back its id. A message keeps its id unless another has it.

        Writing takes one transaction per IMPORT_BATCH_S, each holding whole conversations (a
        reader never sees half of one, nor a kill leave half of one), with a pause between so
        other processes can save their messages meanwhile. If writing fails part way, what this
        import had added is removed again.
        """
        pending = deque(parse_exports(exports))
        imported: list[ConversationRecord] = []
        skipped: list[str] = []
        try:
            while pending:
                with self._transaction(write=True) as conn:
                    deadline = time.monotonic() + IMPORT_BATCH_S
                    # At least one conversation per batch, however long it takes.
                    while True:
                        exported, messages = pending.popleft()
                        conversation_id = (
                            exported.id if is_id(exported.id) else derived_id(exported.id)
                        )
                        if row_exists(conn, "conversations", conversation_id):
                            skipped.append(conversation_id)
                        else:
                            imported.append(
                                insert_imported(conn, conversation_id, exported, messages)
                            )
                        if not pending or time.monotonic() >= deadline:
                            break
                if pending:
                    time.sleep(IMPORT_PAUSE_S)
        except BaseException:
            self._remove_imported(imported)
            raise
        return ImportResult(tuple(imported), tuple(skipped))

    def _remove_imported(self, imported: Sequence[ConversationRecord]) -> None:
        """Undo a failed import's committed batches, as far as that is possible: a
        conversation another process has added a message to since is kept, with that message."""
        # The failure is the error worth reporting; if this cannot be done either (a full
        # disk), what is left is whole conversations, which importing again skips.
        with contextlib.suppress(Exception), self._transaction(write=True) as conn:
            for conversation in imported:
                conn.execute(
                    "DELETE FROM conversations WHERE id = ? "
                    "AND (SELECT count(*) FROM messages WHERE conversation_id = ?) = ?",
                    (conversation.id, conversation.id, conversation.message_count),
                )
