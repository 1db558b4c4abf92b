"""Several processes writing one history at once, and a process killed while it writes."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from termllm.store import HistoryStore
from termllm.store.connection import configure, connect
from termllm.store.migrations import MIGRATIONS, migrate

WORKER = Path(__file__).with_name("history_worker.py")


def start_together(
    db: Path, go_file: Path, jobs: Sequence[Sequence[str]]
) -> list[subprocess.Popen[str]]:
    """Start one worker per job and release them at the same moment."""
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(db), str(go_file), *job],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for job in jobs
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
    go_file.touch()
    return procs


def finish(procs: Sequence[subprocess.Popen[str]]) -> list[str]:
    """Every message id the workers printed, after checking they all succeeded quietly."""
    ids: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert (proc.returncode, err) == (0, ""), err
        ids += out.split()
    return ids


def test_concurrent_writers_lose_nothing_and_never_see_locked(
    tmp_path: Path, consistent: Callable[[Path], None]
) -> None:
    # A fresh file: the workers also race to create the schema.
    db = tmp_path / "history.db"
    workers, rounds = 6, 15
    ids = finish(
        start_together(
            db, tmp_path / "go", [("write", f"w{n}", str(rounds)) for n in range(workers)]
        )
    )

    assert len(ids) == workers * rounds * 2
    consistent(db)
    with HistoryStore.open(db) as store:
        conversations = store.list_conversations()
        assert len(conversations) == workers * rounds
        saved = [m.id for c in conversations for m in store.messages(c.id)]
        assert sorted(saved) == sorted(ids)
        assert len(store.search("payload", limit=10_000)) == len(ids)


def test_a_writer_killed_mid_loop_leaves_a_consistent_database(
    tmp_path: Path, consistent: Callable[[Path], None]
) -> None:
    db = tmp_path / "history.db"
    committed: list[str] = []
    # Several kills at different points, each on the database the previous one left.
    for round_, after in enumerate((7, 20, 33)):
        (proc,) = start_together(db, tmp_path / f"go{round_}", [("forever", f"k{round_}")])
        assert proc.stdout is not None
        committed += [proc.stdout.readline().strip() for _ in range(after)]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()

        consistent(db)
        with HistoryStore.open(db) as store:
            saved = {m.id for c in store.list_conversations() for m in store.messages(c.id)}
            assert set(committed) <= saved
            # The index holds exactly the saved messages: a killed write left nothing half-done.
            assert len(store.search("payload", limit=10_000)) == len(saved)


def test_processes_opening_an_old_database_at_once_migrate_it_once(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    conn = connect(db)
    configure(conn)
    migrate(conn, db, MIGRATIONS[:1])
    conn.close()

    ids = finish(start_together(db, tmp_path / "go", [("write", f"m{n}", "1") for n in range(6)]))

    assert len(ids) == 12
    assert len([path for path in tmp_path.iterdir() if ".backup-v1-" in path.name]) == 1
    with HistoryStore.open(db) as store:
        assert len(store.list_conversations()) == 6
