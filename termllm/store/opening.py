"""Opening the history for use: writable and brought up to date, or, where it cannot be written
(a read-only folder or file, a full disk), read-only, as browsing needs."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from termllm.errors import StorageError
from termllm.store.connection import (
    cannot_write,
    configure,
    connect,
    connect_read_only,
    sqlite_errors,
    storage_error,
)
from termllm.store.migrations import MIGRATIONS, check_known, migrate, schema_version


@dataclass(frozen=True)
class Opened:
    conn: sqlite3.Connection
    backup_path: Path | None
    """The copy made before migrating an older schema, if one was."""
    read_only: StorageError | None
    """Why the history can only be read, or None."""


def open_history(path: Path) -> Opened:
    """Open (creating the file and its folders if needed) and bring the schema up to date; if
    it cannot be written, open it to be read. A history that does not exist and cannot be made
    there reads as empty."""
    try:
        conn = connect(path)
    except StorageError as err:
        return _open_read_only(path, err)
    try:
        try:
            # Before changing any setting: a newer termllm's database is left untouched.
            check_known(schema_version(conn), path)
            configure(conn)
        except sqlite3.Error as err:
            if not cannot_write(err):
                raise storage_error(path, err) from err
            conn.close()
            return _open_read_only(path, storage_error(path, err))
        backup_path = migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return Opened(conn, backup_path, None)


def _open_read_only(path: Path, reason: StorageError) -> Opened:
    if not path.exists():
        # Nothing to read: an empty history, in memory, that refuses writes like the rest.
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        migrate(conn, path)
        return Opened(conn, None, reason)
    conn = connect_read_only(path)
    try:
        with sqlite_errors(path):
            version = schema_version(conn)
        check_known(version, path)
        if version < len(MIGRATIONS):
            raise StorageError(
                f"{path} has the layout of an older termllm (schema {version} of "
                f"{len(MIGRATIONS)}) and must be updated before it can be read, which needs "
                f"write access: {reason.message}"
            )
    except BaseException:
        conn.close()
        raise
    return Opened(conn, None, reason)
