"""A history that cannot be written (a read-only folder, a full disk) can still be read; every
write says why it cannot be done, and one that would need a migration says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from disk_faults import run_on_full_disk, unwritable

from termllm.errors import StorageError
from termllm.store import HistoryStore
from termllm.store.connection import configure, connect
from termllm.store.migrations import MIGRATIONS, migrate


def fill(path: Path) -> str:
    with HistoryStore.open(path) as store:
        conversation = store.create_conversation("Café notes", None, None, {})
        store.add_message(conversation.id, None, "user", "Where is the crème?")
        return conversation.id


def test_a_read_only_folder_is_read_and_writes_say_why(db_path: Path) -> None:
    conversation_id = fill(db_path)
    with unwritable(db_path.parent, db_path), HistoryStore.open(db_path) as store:
        assert [c.title for c in store.list_conversations()] == ["Café notes"]
        assert [m.content for m in store.messages(conversation_id)] == ["Where is the crème?"]
        assert [hit.conversation_id for hit in store.search("creme")] == [conversation_id]
        assert store.export_conversation(conversation_id)["messages"]
        with pytest.raises(StorageError, match="cannot save to the history: cannot write"):
            store.add_message(conversation_id, None, "user", "lost?")
        with pytest.raises(StorageError, match="cannot save"):
            store.rename(conversation_id, "x")
    # Nothing was changed, nor left behind.
    with HistoryStore.open(db_path) as store:
        assert len(store.messages(conversation_id)) == 1
        assert store.read_only is None


def test_a_full_disk_is_read(db_path: Path) -> None:
    conversation_id = fill(db_path)
    script = (
        "import sys; from pathlib import Path; from termllm.store import HistoryStore\n"
        "store = HistoryStore.open(Path(sys.argv[1]))\n"
        "print(store.read_only)\n"
        "print([c.title for c in store.list_conversations()])\n"
        "store.add_message(sys.argv[2], None, 'user', 'lost?')\n"
    )
    done = run_on_full_disk(["-c", script, str(db_path), conversation_id])
    assert done.stdout.splitlines()[1] == "['Café notes']", done.stderr
    assert "disk I/O error" in done.stdout.splitlines()[0]
    assert "StorageError: cannot save to the history" in done.stderr


def test_an_older_schema_that_cannot_be_updated_says_so(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = connect(db_path)
    configure(conn)
    migrate(conn, db_path, MIGRATIONS[:3])
    conn.close()
    with unwritable(db_path.parent, db_path), pytest.raises(StorageError) as caught:
        HistoryStore.open(db_path)
    message = str(caught.value)
    assert "older termllm (schema 3 of" in message and "needs write access" in message


def test_unmerged_changes_that_cannot_be_read_are_not_hidden(db_path: Path) -> None:
    conversation_id = fill(db_path)
    # A writer killed before it merged its last commit leaves it in the -wal file.
    script = (
        "import os, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute(\"UPDATE conversations SET title = 'newer'\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(db_path)], check=True)
    wal = db_path.with_name("history.db-wal")
    assert wal.stat().st_size > 0
    db_path.with_name("history.db-shm").unlink()
    with unwritable(db_path.parent, db_path, wal), pytest.raises(StorageError) as caught:
        HistoryStore.open(db_path)
    assert "history.db-wal" in str(caught.value)
    with HistoryStore.open(db_path) as store:
        assert store.get_conversation(conversation_id).title == "newer"
