"""`termllm ask` when the files it writes for itself cannot be written (a read-only home, a full
disk, a cache folder that refuses): llama.cpp's log, termllm's log, state.json and the saved
model state are conveniences; failing one warns once and the answer comes. And temporary state
files that killed writers left behind are cleaned up and counted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from disk_faults import run_on_full_disk, unwritable
from termllm_cli import Result, termllm_process

from termllm.config import load_config
from termllm.engine.base import KvState
from termllm.services.side_writes import SideWrites
from termllm.services.state_cache import MIB, ConversationStates
from termllm.services.state_files import StateFiles

GREEDY = ("--temperature", "0", "--seed", "7", "--max-tokens", "4")
STARTER = "SmolLM2-135M-Instruct"
IDENTITY = "a" * 64


@pytest.fixture
def own_model(starter_model: Path, tmp_path: Path) -> Path:
    """A model file of the user's, used by path: `ask` remembers it in state.json."""
    path = tmp_path / "mine.gguf"
    shutil.copyfile(starter_model, path)
    return path


def warned_once_each(result: Result, *warnings: str) -> None:
    """Answered, with exactly these warnings on stderr, one line each."""
    assert result.code == 0, result.err
    assert result.out.strip()
    lines = result.err.splitlines()
    assert len(lines) == len(warnings), result.err
    for warning in warnings:
        assert sum(warning in line for line in lines) == 1, (warning, result.err)
    assert all(line.startswith("warning: ") for line in lines), result.err


def test_a_read_only_home_still_answers_without_saving(isolated_env: Path, own_model: Path) -> None:
    home = isolated_env
    home.mkdir()
    with unwritable(home):
        fresh = termllm_process("ask", "--no-save", "-m", str(own_model), *GREEDY, "Hello")
    warned_once_each(fresh, "cannot write the native log", "list of model files used by path")

    # A home that was used, then made read-only: every file and folder in it.
    assert termllm_process("ask", "-m", STARTER, *GREEDY, "Hello").code == 0
    with unwritable(home, *home.rglob("*")):
        continued = termllm_process("ask", "--no-save", "-c", *GREEDY, "And then?")
    warned_once_each(continued, "cannot write the native log", "when models were last used")


def test_a_full_disk_fails_on_the_history_or_answers_without_saving(
    isolated_env: Path, own_model: Path
) -> None:
    assert termllm_process("ask", "-m", STARTER, *GREEDY, "Hello").code == 0
    args = ["-m", "termllm", "ask", "-m", str(own_model), *GREEDY]

    saving = run_on_full_disk([*args, "Still there?"])
    assert saving.returncode == 1
    # The question is what could not be saved, not a convenience file before it.
    assert saving.stderr.startswith("termllm: error: cannot save to the history"), saving.stderr
    assert saving.stderr.count("\n") == 1

    done = run_on_full_disk([*args, "--no-save", "Hi"])
    warned_once_each(
        Result(done.returncode, done.stdout, done.stderr),
        "cannot write the native log",
        "list of model files used by path",
    )


def test_a_cache_folder_that_refuses_writes_warns_and_answers(
    isolated_env: Path, starter_model: Path
) -> None:
    assert termllm_process("ask", "-m", STARTER, *GREEDY, "Hello").code == 0
    paths = load_config(os.environ).paths
    with unwritable(paths.kv_state_dir, paths.log_dir):
        continued = termllm_process("ask", "-c", *GREEDY, "And then?")
    warned_once_each(
        continued, "the model state of conversations is not saved", "cannot write termllm's log"
    )


def ended_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def temporary(folder: Path, writer: int, size: int, age_s: float = 0.0) -> Path:
    """A temporary state file as a writer names it: the file it replaces, pid, clock."""
    path = folder / f"c{writer}.{IDENTITY[:16]}.kv.{writer}.{time.monotonic_ns()}.tmp"
    path.write_bytes(bytes(size))
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_temporary_state_files_of_ended_writers_go_and_live_ones_count(
    isolated_env: Path, starter_model: Path
) -> None:
    config = load_config(os.environ)
    kv = config.paths.kv_state_dir
    kv.mkdir(parents=True)
    killed = temporary(kv, ended_pid(), MIB)
    # Alive, as this process is, but silent for ten minutes: its pid was reused.
    stale = temporary(kv, os.getpid(), MIB, age_s=600)
    live = temporary(kv, os.getpid(), MIB)

    # Saving the answer's model state looks the folder over.
    assert termllm_process("ask", "-m", STARTER, *GREEDY, "Hello").code == 0
    assert not killed.exists() and not stale.exists()
    assert live.exists()
    [state] = kv.glob("*.kv")
    files = ConversationStates(config, SideWrites()).files
    assert files.total_bytes() == state.stat().st_size + MIB


def test_a_write_under_way_counts_against_the_disk_limit(tmp_path: Path) -> None:
    files = StateFiles(tmp_path / "kv", 3 * MIB, tmp_path / "termllm.log")
    files.write("c1", IDENTITY, KvState((1, 2, 3), bytearray(MIB)))
    temporary(tmp_path / "kv", os.getpid(), 3 * MIB // 2)
    files.write("c2", IDENTITY, KvState((1, 2, 3), bytearray(MIB)))
    # Both states and the other process's write under way would not fit: the older one goes.
    assert files.read("c1", IDENTITY) is None
    assert files.read("c2", IDENTITY) is not None
