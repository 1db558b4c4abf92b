"""History stores on temporary files, and a check that a database file is whole."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from termllm.store import HistoryStore
from termllm.store.migrations import UNSPACED_GLOB

WORD_INDEXES = {"messages_fts": "messages", "conversations_fts": "conversations"}
# Indexes of only some rows: (table, column, the GLOB pattern of the rows they index).
PARTIAL_INDEXES = {
    "messages_trigram": ("messages", "content", UNSPACED_GLOB),
    "conversations_trigram": ("conversations", "title", UNSPACED_GLOB),
    "reasoning_fts": ("messages", "reasoning", "*"),
}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore.open(db_path) as opened:
        yield opened


def check_consistent(path: Path) -> None:
    """SQLite's own checks, foreign keys, and every FTS index against the rows it indexes."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        for index in WORD_INDEXES:
            # rank 1: compare the index with the content table, not only with itself.
            conn.execute(f"INSERT INTO {index} ({index}, rank) VALUES ('integrity-check', 1)")
        for index, (table, column, pattern) in PARTIAL_INDEXES.items():
            # These index only some rows, which the rank 1 check would call corrupt: check the
            # index itself, then that it holds exactly the rows it should.
            conn.execute(f"INSERT INTO {index} ({index}) VALUES ('integrity-check')")
            indexed = conn.execute(f"SELECT id FROM {index}_docsize ORDER BY id").fetchall()
            expected = conn.execute(
                f"SELECT seq FROM {table} WHERE {column} GLOB ? ORDER BY seq", (pattern,)
            ).fetchall()
            assert indexed == expected
    finally:
        conn.close()


@pytest.fixture
def consistent() -> Callable[[Path], None]:
    return check_consistent
