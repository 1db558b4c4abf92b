"""The history schema as an append-only list of named steps.

`PRAGMA user_version` counts the steps applied. Each step runs in its own BEGIN IMMEDIATE
transaction, so two processes opening a fresh database at once cannot both apply it, and a step
that fails leaves the database at the previous version. Before the first pending step runs on a
database that already holds a schema, the file is copied aside with SQLite's backup API (safe
while other processes use the WAL).

To change the schema, append a step; never edit one that has shipped, nor what it calls. Give it
a test that builds a database with the steps before it, adds rows, migrates and checks the rows
are kept (tests/store/test_migrations.py: add the seed for the version before it).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from termllm.errors import StorageError
from termllm.store.connection import BUSY_TIMEOUT_S, sqlite_errors, transaction


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[sqlite3.Connection], None]


def _run(conn: sqlite3.Connection, statements: Sequence[str]) -> None:
    # One statement at a time: executescript() would COMMIT the migration's transaction.
    for statement in statements:
        conn.execute(statement)


def _fts_index(
    table: str, column: str, index: str, tokenizer: str, only_glob: str | None = None
) -> list[str]:
    """An FTS5 index of `table.column` kept in step by triggers, over every row or, with
    `only_glob`, over the rows whose text matches that GLOB pattern.

    External content: the text is stored once, in `table`; the index keeps only tokens. It is
    keyed by `seq`, an INTEGER PRIMARY KEY, because VACUUM may renumber implicit rowids. The
    triggers also fire for rows removed by ON DELETE CASCADE.
    """

    def only(row: str) -> str:
        return "" if only_glob is None else f" WHERE {row}.{column} GLOB '{only_glob}'"

    insert = f"INSERT INTO {index} (rowid, {column}) SELECT new.seq, new.{column}{only('new')};"
    # FTS5 must be told the text it indexed to remove it, and only rows it did index.
    delete = (
        f"INSERT INTO {index} ({index}, rowid, {column}) "
        f"SELECT 'delete', old.seq, old.{column}{only('old')};"
    )
    return [
        f"CREATE VIRTUAL TABLE {index} USING fts5 "
        f"({column}, content='{table}', content_rowid='seq', tokenize='{tokenizer}')",
        f"CREATE TRIGGER {index}_insert AFTER INSERT ON {table} BEGIN {insert} END",
        f"CREATE TRIGGER {index}_delete AFTER DELETE ON {table} BEGIN {delete} END",
        f"CREATE TRIGGER {index}_update AFTER UPDATE OF {column} ON {table} "
        f"BEGIN {delete} {insert} END",
        # The rows already there (a database migrated from before this index).
        f"INSERT INTO {index} (rowid, {column}) SELECT seq, {column} FROM {table}{only(table)}",
    ]


_WORDS = "unicode61 remove_diacritics 2"

# Scripts written without spaces between words (Chinese, Japanese, Thai…) or with particles
# glued to words (Korean): a word index sees whole phrases there as one token. Step 2 indexes
# the text that contains any of these characters by substrings; search.py sends queries that
# contain one there. Frozen with step 2: a wider list needs a step that rebuilds the index.
UNSPACED_SCRIPTS: Final = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x9FFF),  # CJK radicals, kana, bopomofo, CJK ideographs and extensions
    (0xA960, 0xA97F),  # Hangul Jamo Extended-A
    (0xAC00, 0xD7FF),  # Hangul syllables, Jamo Extended-B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF00, 0xFFEF),  # half- and full-width forms
    (0x20000, 0x3FFFF),  # CJK ideograph extensions B and later
)
UNSPACED_GLOB: Final = (
    "*[" + "".join(f"{chr(low)}-{chr(high)}" for low, high in UNSPACED_SCRIPTS) + "]*"
)


def _create_history(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        [
            """CREATE TABLE conversations (
                seq INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                title TEXT NOT NULL,
                model TEXT,
                system_prompt TEXT,
                params TEXT NOT NULL DEFAULT '{}',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL
            )""",
            "CREATE INDEX conversations_by_updated ON conversations (updated_at)",
            """CREATE TABLE messages (
                seq INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                conversation_id TEXT NOT NULL
                    REFERENCES conversations (id) ON DELETE CASCADE,
                parent_id TEXT REFERENCES messages (id) ON DELETE CASCADE,
                role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
                content TEXT NOT NULL,
                model TEXT,
                created_at REAL NOT NULL,
                prompt_tokens INTEGER,
                completion_tokens INTEGER,
                timings TEXT,
                finish_reason TEXT
            )""",
            "CREATE INDEX messages_by_conversation ON messages (conversation_id, created_at)",
            # Foreign keys look children up by parent: without it every delete scans messages.
            "CREATE INDEX messages_by_parent ON messages (parent_id)",
            *_fts_index("messages", "content", "messages_fts", _WORDS),
            *_fts_index("conversations", "title", "conversations_fts", _WORDS),
        ],
    )


def _add_substring_index(conn: sqlite3.Connection) -> None:
    # Trigram indexes find any substring of three or more characters; shorter queries fall
    # back to LIKE (see search.py). Only text in UNSPACED_SCRIPTS is indexed: a query that
    # needs substrings contains such a character, so can only match such text, and the index
    # (about three times the size of the text it covers) costs nothing to other histories.
    _run(
        conn,
        [
            *_fts_index("messages", "content", "messages_trigram", "trigram", UNSPACED_GLOB),
            *_fts_index(
                "conversations", "title", "conversations_trigram", "trigram", UNSPACED_GLOB
            ),
        ],
    )


def _add_current_leaf(conn: sqlite3.Connection) -> None:
    # The message the user chose to continue from (by flipping to another alternative); NULL
    # means the newest message, as before this step. No foreign key: messages already cascade
    # from conversations, and a reference back would make deleting a conversation a cycle. A
    # leaf that is not a message of the conversation is read as NULL.
    _run(conn, ["ALTER TABLE conversations ADD COLUMN leaf_id TEXT"])


def _add_message_error(conn: sqlite3.Connection) -> None:
    # Why an answer failed (finish_reason 'error'), so the conversation can show it; NULL for
    # every other message and for failures saved before this step, whose reason was not kept.
    _run(conn, ["ALTER TABLE messages ADD COLUMN error TEXT"])


def _add_message_reasoning(conn: sqlite3.Connection) -> None:
    # A thinking model's reasoning before its answer, apart from the answer's content (which is
    # what is searched, exported as the answer and sent back to the model), and how many of the
    # completion's tokens it took. NULL for answers without reasoning and for earlier rows. Its
    # own index, over the rows that have some, lets a search find reasoning when asked to.
    _run(
        conn,
        [
            "ALTER TABLE messages ADD COLUMN reasoning TEXT",
            "ALTER TABLE messages ADD COLUMN reasoning_tokens INTEGER",
            *_fts_index("messages", "reasoning", "reasoning_fts", _WORDS, only_glob="*"),
        ],
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration("create_history", _create_history),
    Migration("add_substring_index", _add_substring_index),
    Migration("add_current_leaf", _add_current_leaf),
    Migration("add_message_error", _add_message_error),
    Migration("add_message_reasoning", _add_message_reasoning),
)


def schema_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def check_known(version: int, path: Path, steps: Sequence[Migration] = MIGRATIONS) -> None:
    if version > len(steps):
        raise StorageError(
            f"{path} was written by a newer termllm (schema {version}, this one knows "
            f"{len(steps)}); upgrade termllm"
        )


def migrate(
    conn: sqlite3.Connection, path: Path, steps: Sequence[Migration] = MIGRATIONS
) -> Path | None:
    """Apply the pending steps; returns the backup made first, if the database had a schema."""
    with sqlite_errors(path):
        if schema_version(conn) == len(steps):
            return None
        backup: Path | None = None
        first = True
        while True:
            with transaction(conn, write=True):
                # Read again under the write lock: another process may have migrated meanwhile.
                version = schema_version(conn)
                check_known(version, path, steps)
                if version == len(steps):
                    return backup
                if first and version == 0:
                    _check_empty(conn, path)
                elif first:
                    backup = _backup(path, version)
                first = False
                steps[version].apply(conn)
                conn.execute(f"PRAGMA user_version = {version + 1}")


def _check_empty(conn: sqlite3.Connection, path: Path) -> None:
    if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise StorageError(f"{path} is an SQLite database that termllm did not create")


def _backup(path: Path, version: int) -> Path:
    """Copy the database aside while the caller holds the write lock, so the copy is exactly
    the state about to be migrated."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target_path = path.with_name(f"{path.name}.backup-v{version}-{stamp}")
    # A second connection reads the source: SQLite refuses to back up from a connection that
    # holds the write lock, and waits forever for it to be released.
    source = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    target = sqlite3.connect(target_path)
    try:
        source.backup(target)
    except BaseException:
        target.close()
        with contextlib.suppress(OSError):
            target_path.unlink()
        raise
    finally:
        source.close()
    target.close()
    return target_path
