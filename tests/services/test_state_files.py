"""Saved model states on disk: what is read back is what was written, and nothing doubtful is
ever handed out (another model, a damaged file), only discarded with a log line."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from termllm.config import load_config
from termllm.engine.base import KvState
from termllm.services.state_cache import MIB, RecentStates
from termllm.services.state_files import MAGIC, StateFiles, data_checksum

IDENTITY = "a" * 64
OTHER_IDENTITY = "b" * 64


def state(n_tokens: int = 50, data_bytes: int = 1000, fill: int = 7) -> KvState:
    return KvState(tuple(range(n_tokens)), bytearray([fill]) * data_bytes)


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "termllm.log"


@pytest.fixture
def files(tmp_path: Path, log_file: Path) -> StateFiles:
    return StateFiles(tmp_path / "kv", 10 * MIB, log_file)


def test_a_written_state_reads_back_the_same(files: StateFiles) -> None:
    saved = state()
    files.write("conv1", IDENTITY, saved)
    assert files.read_tokens("conv1", IDENTITY) == saved.tokens
    assert files.read("conv1", IDENTITY) == saved


def test_a_state_read_back_is_the_file_mapped_and_outlives_its_file(files: StateFiles) -> None:
    saved = KvState(tuple(range(10)), bytearray(os.urandom(3 * 4096 + 5)))
    files.write("conv1", IDENTITY, saved)
    read = files.read("conv1", IDENTITY)
    assert read is not None and isinstance(read.data, memoryview)
    assert not read.data.readonly, "ctypes hands on only writable buffers"
    # Kept in memory, a state read from disk must survive its file being replaced or deleted.
    files.write("conv1", IDENTITY, state())
    files.delete(["conv1"])
    assert read == saved


def test_another_identity_or_conversation_finds_nothing(files: StateFiles) -> None:
    files.write("conv1", IDENTITY, state())
    assert files.read("conv1", OTHER_IDENTITY) is None
    assert files.read("conv2", IDENTITY) is None
    assert files.read_tokens("conv1", OTHER_IDENTITY) is None


def test_a_name_collision_with_another_identity_is_not_read(files: StateFiles) -> None:
    files.write("conv1", IDENTITY, state())
    # Same first 16 characters, so the same file name, but not the same identity.
    colliding = IDENTITY[:16] + "c" * 48
    assert files.read("conv1", colliding) is None
    assert files.path("conv1", IDENTITY).exists(), "not ours, so not ours to delete"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[:-10], "holds"),
        (lambda data: data[:-100] + bytes(100), "checksum"),
        (lambda data: b"garbage!" + data[8:], "not a termllm state file"),
        (lambda data: data[: len(MAGIC) + 4] + b"X" + data[len(MAGIC) + 5 :], "header"),
        (lambda data: b"", "not a termllm state file"),
    ],
    ids=["truncated", "flipped-bytes", "wrong-magic", "broken-header", "empty"],
)
def test_a_damaged_file_is_discarded_with_a_log_line(
    files: StateFiles, log_file: Path, damage: object, reason: str
) -> None:
    files.write("conv1", IDENTITY, state())
    path = files.path("conv1", IDENTITY)
    assert callable(damage)
    path.write_bytes(damage(path.read_bytes()))
    assert files.read("conv1", IDENTITY) is None
    assert not path.exists()
    (line,) = log_file.read_text().splitlines()
    assert f"discarded the model state {path.name}" in line
    assert reason in line


def blocks(*fills: int) -> bytes:
    return b"".join(bytes([fill]) * 4096 for fill in fills)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:5000] + bytes([data[5000] ^ 0x10]) + data[5001:],
        lambda data: data[:4096] + bytes(4096) + data[8192:],
        lambda data: data[4096:8192] + data[:4096] + data[8192:],
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),
    ],
    ids=["one-bit", "zeroed-block", "blocks-swapped", "last-byte"],
)
def test_the_data_checksum_sees_what_damages_a_file(damage: object) -> None:
    data = blocks(1, 2, 3) + b"tail"
    assert callable(damage)
    damaged = damage(data)
    assert len(damaged) == len(data) and damaged != data
    assert data_checksum(bytearray(damaged)) != data_checksum(bytearray(data))
    assert data_checksum(memoryview(bytearray(data))) == data_checksum(bytearray(data))


def test_damaged_tokens_are_discarded_before_they_are_used(
    files: StateFiles, log_file: Path
) -> None:
    files.write("conv1", IDENTITY, state())
    path = files.path("conv1", IDENTITY)
    raw = path.read_bytes()
    at = raw.index((7).to_bytes(4, "little") + (8).to_bytes(4, "little"))  # tokens 7 and 8
    path.write_bytes(raw[:at] + (9).to_bytes(4, "little") + raw[at + 4 :])
    assert files.read_tokens("conv1", IDENTITY) is None
    assert not path.exists()
    assert "checksum" in log_file.read_text()


def test_eviction_keeps_the_total_under_the_limit_dropping_the_least_recently_used(
    tmp_path: Path, log_file: Path
) -> None:
    files = StateFiles(tmp_path / "kv", 3 * MIB, log_file)
    one_mib = state(data_bytes=MIB - 1000)
    for index, conversation in enumerate(("c1", "c2", "c3")):
        files.write(conversation, IDENTITY, one_mib)
        past = time.time() - 100 + index
        os.utime(files.path(conversation, IDENTITY), (past, past))
    # Reading c1 makes c2 the least recently used.
    assert files.read("c1", IDENTITY) is not None
    files.write("c4", IDENTITY, one_mib)
    assert files.total_bytes() <= 3 * MIB
    assert files.read_tokens("c2", IDENTITY) is None
    for kept in ("c1", "c3", "c4"):
        assert files.read_tokens(kept, IDENTITY) is not None


def test_a_state_larger_than_the_limit_is_not_kept(tmp_path: Path, log_file: Path) -> None:
    files = StateFiles(tmp_path / "kv", MIB, log_file)
    files.write("c1", IDENTITY, state(data_bytes=MIB // 2))
    files.write("c1", IDENTITY, state(data_bytes=2 * MIB))
    assert files.read("c1", IDENTITY) is None
    assert files.total_bytes() == 0


def test_deleting_a_conversation_removes_all_its_states(files: StateFiles) -> None:
    files.write("c1", IDENTITY, state())
    files.write("c1", OTHER_IDENTITY, state())
    files.write("c2", IDENTITY, state())
    assert files.delete(["c1"]) == 2
    assert files.read("c1", IDENTITY) is None
    assert files.read("c2", IDENTITY) is not None


def test_a_zero_limit_turns_the_disk_cache_off(tmp_path: Path, log_file: Path) -> None:
    files = StateFiles(tmp_path / "kv", 0, log_file)
    files.write("c1", IDENTITY, state())
    assert not (tmp_path / "kv").exists()
    assert files.read("c1", IDENTITY) is None


def test_an_unwritable_folder_is_a_log_line_not_an_error(tmp_path: Path, log_file: Path) -> None:
    blocker = tmp_path / "kv"
    blocker.write_text("a file where the folder should be")
    StateFiles(blocker, MIB, log_file).write("c1", IDENTITY, state())
    assert "could not save the model state of c1" in log_file.read_text()


def test_the_memory_cache_drops_the_least_recently_used_past_its_limit() -> None:
    recent = RecentStates(3000)
    for conversation in ("c1", "c2", "c3"):
        recent.put(conversation, IDENTITY, state(n_tokens=0, data_bytes=1000))
    assert recent.get("c1", IDENTITY) is not None  # c2 is now the oldest
    recent.put("c4", IDENTITY, state(n_tokens=0, data_bytes=1000))
    assert recent.get("c2", IDENTITY) is None
    assert recent.total_bytes() <= 3000
    assert recent.get("c4", OTHER_IDENTITY) is None


def test_the_cache_lives_in_the_cache_dir_and_its_sizes_are_settings() -> None:
    config = load_config({"TERMLLM_HOME": "/x", "TERMLLM_CACHE_DISK_MB": "10"})
    assert config.paths.kv_state_dir == Path("/x/cache/kv")
    assert config.settings.cache.disk_mb == 10
    assert config.settings.cache.ram_mb == 512
