"""Schema steps: each one from the version before it, backups, and files termllm must refuse."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from termllm.errors import StorageError
from termllm.store import HistoryStore
from termllm.store.connection import configure, connect
from termllm.store.migrations import MIGRATIONS, Migration, migrate, schema_version

LATEST = len(MIGRATIONS)


def database_at(path: Path, version: int) -> sqlite3.Connection:
    """A database as the termllm that knew only the first `version` steps left it."""
    conn = connect(path)
    configure(conn)
    migrate(conn, path, MIGRATIONS[:version])
    return conn


def seed_v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO conversations (id, title, model, system_prompt, params, created_at, "
        "updated_at) VALUES ('conv000001', 'Old 東京タワー chat', 'org/m:Q4_0', 'Be brief.', "
        "'{\"temperature\": 0.2}', 100.0, 200.0)"
    )
    conn.execute(
        "INSERT INTO messages (id, conversation_id, parent_id, role, content, model, created_at, "
        "prompt_tokens, completion_tokens, timings, finish_reason) VALUES "
        "('mesg000001', 'conv000001', NULL, 'user', 'hello café 你好世界', NULL, 150.0, "
        "NULL, NULL, NULL, NULL), "
        "('mesg000002', 'conv000001', 'mesg000001', 'assistant', 'Здравствуйте', 'org/m:Q4_0', "
        "200.0, 12, 3, '{\"ttft_ms\": 40.5}', 'stop')"
    )


# The same rows, written with the schema of each earlier version. A new step adds the seed for
# the version before it; test_every_earlier_version_has_a_seed insists.
# Step 2 added indexes only, and steps 3 and 4 columns that are NULL for rows already there,
# so versions 2 to 4 take the same rows.
SEEDS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: seed_v1,
    2: seed_v1,
    3: seed_v1,
    4: seed_v1,
}


def check_seeded_rows(store: HistoryStore) -> None:
    conversation = store.get_conversation("conv000001")
    assert (conversation.title, conversation.model, conversation.system_prompt) == (
        "Old 東京タワー chat",
        "org/m:Q4_0",
        "Be brief.",
    )
    assert (conversation.params, conversation.created_at, conversation.updated_at) == (
        {"temperature": 0.2},
        100.0,
        200.0,
    )
    question, answer = store.messages("conv000001")
    assert (question.id, question.content, question.parent_id) == (
        "mesg000001",
        "hello café 你好世界",
        None,
    )
    assert (answer.parent_id, answer.prompt_tokens, answer.timings, answer.finish_reason) == (
        "mesg000001",
        12,
        {"ttft_ms": 40.5},
        "stop",
    )
    # Before step 4 no message kept an error.
    assert (question.error, answer.error) == (None, None)
    # Before step 3 no branch could be chosen: the newest message's branch stays current.
    assert conversation.leaf_id is None
    assert store.current_branch("conv000001") == [question, answer]
    # Rows written before a search index existed are found through it.
    assert [hit.message_id for hit in store.search("cafe")] == ["mesg000001"]
    assert [hit.message_id for hit in store.search("ЗДРАВСТВУЙТЕ")] == ["mesg000002"]
    assert [hit.message_id for hit in store.search("你好世界")] == ["mesg000001"]
    assert [hit.message_id for hit in store.search("東京タワー")] == [None]


def test_every_earlier_version_has_a_seed() -> None:
    assert set(SEEDS) == set(range(1, LATEST))


@pytest.mark.parametrize("version", range(1, LATEST))
def test_migrating_from_an_earlier_version_keeps_rows_after_a_backup(
    db_path: Path, version: int, consistent: Callable[[Path], None]
) -> None:
    conn = database_at(db_path, version)
    SEEDS[version](conn)
    conn.close()

    with HistoryStore.open(db_path) as store:
        check_seeded_rows(store)
        backup = store.backup_path
    consistent(db_path)
    assert schema_version(sqlite3.connect(db_path)) == LATEST
    assert backup is not None
    assert backup.name.startswith(f"history.db.backup-v{version}-")
    copy = sqlite3.connect(backup)
    assert schema_version(copy) == version
    assert copy.execute("SELECT count(*) FROM messages").fetchone() == (2,)
    copy.close()


def test_a_new_database_gets_every_step_and_no_backup(db_path: Path) -> None:
    with HistoryStore.open(db_path) as store:
        assert store.backup_path is None
    with HistoryStore.open(db_path) as store:
        assert store.backup_path is None
    conn = sqlite3.connect(db_path)
    assert schema_version(conn) == LATEST
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    assert not [path for path in db_path.parent.iterdir() if "backup" in path.name]


def test_a_failing_step_leaves_the_database_at_the_version_before(db_path: Path) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("step failed")

    HistoryStore.open(db_path).close()
    conn = connect(db_path)
    with pytest.raises(RuntimeError):
        migrate(conn, db_path, [*MIGRATIONS, Migration("broken", broken)])
    assert schema_version(conn) == LATEST
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in tables


def test_a_database_from_a_newer_termllm_is_refused_and_left_untouched(db_path: Path) -> None:
    HistoryStore.open(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    before = db_path.read_bytes()

    with pytest.raises(StorageError, match=rf"newer termllm \(schema {LATEST + 1}\b.*upgrade"):
        HistoryStore.open(db_path)
    assert db_path.read_bytes() == before
    assert sorted(path.name for path in db_path.parent.iterdir()) == ["history.db"]


def test_a_file_that_is_not_a_database_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"not a database at all\n" * 200)
    with pytest.raises(StorageError, match=r"history\.db is not a readable termllm history"):
        HistoryStore.open(db_path)
    assert db_path.read_bytes() == b"not a database at all\n" * 200


def test_a_damaged_database_is_reported_naming_the_file(db_path: Path) -> None:
    with HistoryStore.open(db_path) as store:
        conversation = store.create_conversation("t", None, None, {})
        for n in range(200):
            store.add_message(conversation.id, None, "user", f"message {n} " + "text " * 50)
    data = bytearray(db_path.read_bytes())
    page = 4096
    data[page : len(data) - page] = b"\xff" * (len(data) - 2 * page)
    db_path.write_bytes(bytes(data))

    with (
        pytest.raises(StorageError, match=r"history\.db is not a readable termllm history"),
        HistoryStore.open(db_path) as store,
    ):
        store.list_conversations()
        store.search("message")


def test_another_programs_database_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    with pytest.raises(StorageError, match="termllm did not create"):
        HistoryStore.open(db_path)


def test_a_folder_that_cannot_be_created_is_reported(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    # Nothing there to read: an empty history, which says why at the first write.
    with HistoryStore.open(tmp_path / "file" / "history.db") as store:
        assert store.list_conversations() == []
        with pytest.raises(StorageError, match="cannot save to the history: cannot create"):
            store.create_conversation("t", None, None, {})


def test_a_branched_conversation_from_version_2_can_choose_its_branch(db_path: Path) -> None:
    conn = database_at(db_path, 2)
    seed_v1(conn)
    conn.execute(
        "INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at) "
        "VALUES ('mesg000003', 'conv000001', 'mesg000001', 'assistant', 'Hello again', 300.0)"
    )
    conn.close()

    with HistoryStore.open(db_path) as store:
        assert [m.id for m in store.current_branch("conv000001")] == ["mesg000001", "mesg000003"]
        assert store.select_branch("conv000001", "mesg000002") == "mesg000002"
    with HistoryStore.open(db_path) as store:
        assert store.get_conversation("conv000001").leaf_id == "mesg000002"
        assert [m.id for m in store.current_branch("conv000001")] == ["mesg000001", "mesg000002"]


def test_a_failed_answer_from_version_3_has_no_error_and_new_ones_keep_theirs(
    db_path: Path,
) -> None:
    conn = database_at(db_path, 3)
    seed_v1(conn)
    conn.execute(
        "INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at, "
        "finish_reason) VALUES ('mesg000003', 'conv000001', 'mesg000001', 'assistant', 'Hal', "
        "300.0, 'error')"
    )
    conn.close()

    with HistoryStore.open(db_path) as store:
        old = store.messages("conv000001")[-1]
        assert (old.id, old.content, old.finish_reason, old.error) == (
            "mesg000003",
            "Hal",
            "error",
            None,
        )
        new = store.add_message(
            "conv000001",
            "mesg000001",
            "assistant",
            "",
            finish_reason="error",
            error="generation failed: llama_decode returned -3",
        )
        assert store.messages("conv000001")[-1] == new
    conn = sqlite3.connect(db_path)
    errors = conn.execute("SELECT id, error FROM messages ORDER BY seq").fetchall()
    conn.close()
    assert errors == [
        ("mesg000001", None),
        ("mesg000002", None),
        ("mesg000003", None),
        (new.id, "generation failed: llama_decode returned -3"),
    ]


def test_an_answer_from_version_4_has_no_reasoning_and_new_ones_keep_theirs_apart(
    db_path: Path, consistent: Callable[[Path], None]
) -> None:
    conn = database_at(db_path, 4)
    seed_v1(conn)
    conn.close()

    with HistoryStore.open(db_path) as store:
        old = store.messages("conv000001")[-1]
        assert (old.content, old.reasoning, old.reasoning_tokens) == ("Здравствуйте", None, None)
        new = store.add_message(
            "conv000001",
            "mesg000001",
            "assistant",
            "Hello!",
            finish_reason="stop",
            reasoning="The user greets me in several languages.",
            reasoning_tokens=9,
        )
        assert store.messages("conv000001")[-1] == new
        assert (new.reasoning, new.reasoning_tokens) == (
            "The user greets me in several languages.",
            9,
        )
        assert store.search("languages") == []
        (hit,) = store.search("languages", reasoning=True)
        assert (hit.message_id, hit.role) == (new.id, "reasoning")
    consistent(db_path)
