"""Opening the history database so that several processes can share it, transactions, and the
translation of SQLite failures into errors a user can read."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from termllm.errors import StorageError

# How long a writer waits for another process's write to finish before giving up. Writes are
# single messages, so any real wait is milliseconds; this only bounds a stuck peer.
BUSY_TIMEOUT_S = 10.0
_WAL_RETRY_S = 0.005


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions are opened explicitly by `transaction`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StorageError(f"cannot create {path.parent}: {err.strerror or err}") from err
    with sqlite_errors(path):
        # check_same_thread=False: the TUI commits from worker threads; the store serializes
        # its own use of the connection.
        return sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )


def configure(conn: sqlite3.Connection) -> None:
    """Per-connection settings; call outside any transaction (SQLite ignores them inside one)."""
    # WAL lets readers (the TUI's list) run while another process writes, and makes each commit
    # a single append. FULL syncs the WAL on every commit, so a committed message survives a
    # power cut as well as a killed process.
    _use_wal(conn)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


def _use_wal(conn: sqlite3.Connection) -> None:
    # The mode is stored in the file, so only the first open of a new file switches it, but
    # processes that create the file at the same moment race for that switch, and SQLite
    # answers the losers "database is locked" at once instead of calling the busy handler.
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(_WAL_RETRY_S)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[sqlite3.Connection]:
    """One transaction; a writer takes the write lock up front (BEGIN IMMEDIATE).

    Taking it up front matters in WAL mode: a transaction that starts reading and later writes
    fails at once with "database is locked" if another process committed in between, without
    waiting for the busy timeout.
    """
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            # The original error is the one worth reporting; a failed rollback is undone by
            # SQLite when the connection closes.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextlib.contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as err:
        raise storage_error(path, err) from err


def storage_error(path: Path, err: sqlite3.Error) -> StorageError:
    text = str(err)
    if "not a database" in text or "malformed" in text:
        return StorageError(f"{path} is not a readable termllm history database ({text})")
    if "locked" in text or "busy" in text:
        return StorageError(f"{path} is locked by another termllm process; try again")
    if "no such module: fts5" in text or "no such tokenizer" in text:
        return StorageError(
            f"cannot use {path}: the history needs SQLite 3.34 or newer with FTS5 "
            f"(this Python has SQLite {sqlite3.sqlite_version})"
        )
    return StorageError(f"{path}: {text}")
