"""Opening the history database so that several processes can share it (or, where it cannot be
written, only read it), transactions, and the translation of SQLite failures into errors a user
can read."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from termllm.errors import StorageError

# How long a writer waits for another process's write to finish before giving up. Most writes
# are single messages (milliseconds) and an import commits every half second, but one imported
# conversation is written whole and a migration rebuilds indexes, which on a large history
# takes many seconds: giving up then would lose the question an `ask` was saving. This only
# bounds a stuck peer.
BUSY_TIMEOUT_S = 60.0
_WAL_RETRY_S = 0.005
# SQLite's primary result codes for a file that cannot be written where it is: no permission,
# a read-only file or folder (the -wal and -shm files cannot be made), a full or failing disk.
_CANNOT_WRITE = frozenset(
    {
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
    }
)


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


def cannot_write(err: sqlite3.Error) -> bool:
    """Whether `err` says the database cannot be written here, rather than that it is bad."""
    code: int = getattr(err, "sqlite_errorcode", -1)
    return (code & 0xFF) in _CANNOT_WRITE


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes, to an existing database that cannot be written.

    SQLite reads a WAL database through its -shm file, which it must create or grow: in a
    read-only folder or on a full disk it cannot. The database is then read as immutable
    (without the -shm file), which is only right when no -wal file holds commits not yet
    copied into it: with one, this refuses rather than show an older history.
    """
    uri = path.absolute().as_uri()
    try:
        return _opened(f"{uri}?mode=ro")
    except sqlite3.Error as err:
        if not cannot_write(err):
            raise storage_error(path, err) from err
        wal = path.with_name(f"{path.name}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise StorageError(
                f"cannot read {path}: its latest changes are still in {wal.name}, which only "
                f"a termllm that can write there can merge ({err})"
            ) from err
    try:
        return _opened(f"{uri}?mode=ro&immutable=1")
    except sqlite3.Error as err:
        if cannot_write(err):
            # Not even reading works (no permission to read, a failing disk).
            raise StorageError(f"cannot read {path} ({err})") from err
        raise storage_error(path, err) from err


def _opened(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        # Reading the schema opens the file (and the -shm file) now rather than at first use.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


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
    if cannot_write(err):
        return StorageError(
            f"cannot write {path} ({text}): its folder must be writable and the disk not full"
        )
    if "no such module: fts5" in text or "no such tokenizer" in text:
        return StorageError(
            f"cannot use {path}: the history needs SQLite 3.34 or newer with FTS5 "
            f"(this Python has SQLite {sqlite3.sqlite_version})"
        )
    return StorageError(f"{path}: {text}")
