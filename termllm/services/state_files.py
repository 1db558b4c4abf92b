"""Saved model state of conversations on disk: one file per conversation and model identity,
checked before use, evicted least recently used first.

A file is a cache entry, never the only copy of anything: whatever is wrong with one (another
model, a truncated write, flipped bits, a format from another version) makes it ignored and
deleted, and the conversation is read from its text instead.

Layout: MAGIC, a 4-byte little-endian header length, a JSON header (identity, conversation,
token count, data size, the CRC-32 of the tokens and the block checksum of the data), the
tokens as int32, the engine's data.

Restoring is what a user waits for, so the data is never read: the file is mapped into memory,
checked where it lies, and llama.cpp copies it from there into its cache. For 8,000 tokens of
the starter model (185 MB) on the development machine: reading it into fresh memory and taking
its CRC-32, as this format's first version did, took 320-390 ms; mapping and checking it takes
25-45 ms, and llama.cpp's copy 35-50 ms, about what copying 185 MB in memory takes.
"""

from __future__ import annotations

import array
import contextlib
import json
import mmap
import os
import re
import struct
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from termllm.engine.base import KvState
from termllm.services.side_writes import SideWrites

MAGIC = b"termllm-kv\x00\x02"
SUFFIX = ".kv"
_HEADER_LENGTH = struct.Struct("<I")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]+$")
# A temporary file is named after the file it replaces, its writer's pid and a clock reading.
_TEMP_WRITER = re.compile(r"\.(\d+)\.\d+\.tmp$")
# A temporary file this old belongs to a writer that died, even if its pid is alive (it was
# reused, or is another container's): writing even gigabytes of state takes seconds.
_STALE_TEMP_S = 300.0
_BLOCK_WORDS = 512
"""64-bit words in a block of the data checksum: 4 KiB, a page."""


class CorruptStateError(Exception):
    """A state file that cannot be trusted; the message says why."""


@dataclass(frozen=True)
class _Header:
    identity: str
    conversation_id: str
    n_tokens: int
    data_bytes: int
    tokens_crc32: int
    data_checksum: int


class StateFiles:
    def __init__(
        self,
        directory: Path,
        limit_bytes: int,
        log_file: Path,
        side_writes: SideWrites | None = None,
    ) -> None:
        self._directory = directory
        self._limit_bytes = limit_bytes
        self._log_file = log_file
        # Where a failed write is told as a warning; None: only in the log (a scratch folder).
        self._side_writes = side_writes

    @property
    def enabled(self) -> bool:
        return self._limit_bytes > 0

    def path(self, conversation_id: str, identity: str) -> Path:
        return self._directory / f"{conversation_id}.{identity[:16]}{SUFFIX}"

    def read_tokens(self, conversation_id: str, identity: str) -> tuple[int, ...] | None:
        """The tokens a saved state holds, without reading its data (cheap, to decide)."""
        loaded = self._read(conversation_id, identity, with_data=False)
        return loaded.tokens if loaded is not None else None

    def read(self, conversation_id: str, identity: str) -> KvState | None:
        loaded = self._read(conversation_id, identity, with_data=True)
        if loaded is not None:
            # Reading is using: least recently used means least recently read or written.
            with contextlib.suppress(OSError):
                os.utime(self.path(conversation_id, identity))
        return loaded

    def write(self, conversation_id: str, identity: str, state: KvState) -> None:
        """Replace the conversation's state atomically, then evict down to the size limit."""
        if not self.enabled or not _SAFE_ID.match(conversation_id):
            return
        if state.size_bytes > self._limit_bytes:
            self.discard(conversation_id, identity, "it is larger than cache.disk_mb")
            return
        tokens = array.array("i", state.tokens)
        if sys.byteorder != "little":
            tokens.byteswap()
        header = json.dumps(
            {
                "identity": identity,
                "conversation": conversation_id,
                "tokens": len(state.tokens),
                "data_bytes": len(state.data),
                "tokens_crc32": zlib.crc32(tokens),
                "data_checksum": data_checksum(state.data),
            }
        ).encode("utf-8")
        target = self.path(conversation_id, identity)
        temporary = target.with_name(f"{target.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            with temporary.open("wb") as handle:
                handle.write(MAGIC + _HEADER_LENGTH.pack(len(header)) + header)
                handle.write(tokens)
                handle.write(state.data)
            # No fsync: a cache entry lost to a power cut costs a re-read; a torn one fails
            # its checksum.
            temporary.replace(target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            self._tell(
                self._directory,
                f"the model state of conversations is not saved in {self._directory}"
                f" ({exc.strerror or exc}): continuing one reads it again",
            )
            self._log(f"could not save the model state of {conversation_id}: {exc}")
            return
        self._evict(keep=target)

    def delete(self, conversation_ids: list[str]) -> int:
        """Remove every saved state of these conversations; the number of files removed."""
        removed = 0
        for conversation_id in conversation_ids:
            if not _SAFE_ID.match(conversation_id):
                continue
            for path in self._directory.glob(f"{conversation_id}.*{SUFFIX}"):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed

    def discard(self, conversation_id: str, identity: str, reason: str) -> None:
        path = self.path(conversation_id, identity)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            self._log(f"discarded the model state {path.name}: {reason}")

    def total_bytes(self) -> int:
        """What the folder holds: saved states and the temporary files of writes under way."""
        return sum(size for _, _, size in self._entries()) + sum(self._temporary_sizes())

    def ids(self, starting: str, identity: str) -> list[str]:
        """The ids starting so that have a state of this identity, most recently used first."""
        if not self.enabled or not _SAFE_ID.match(starting):
            return []
        found: list[tuple[float, str]] = []
        with contextlib.suppress(FileNotFoundError):
            for path in self._directory.glob(f"{starting}*.{identity[:16]}{SUFFIX}"):
                with contextlib.suppress(FileNotFoundError):
                    found.append((path.stat().st_mtime, path.name.split(".", 1)[0]))
        return [state_id for _, state_id in sorted(found, reverse=True)]

    def _read(self, conversation_id: str, identity: str, *, with_data: bool) -> KvState | None:
        if not self.enabled or not _SAFE_ID.match(conversation_id):
            return None
        path = self.path(conversation_id, identity)
        try:
            with path.open("rb") as handle:
                header = _read_header(handle, os.fstat(handle.fileno()).st_size)
                if header.identity != identity or header.conversation_id != conversation_id:
                    return None  # another model's state under a colliding name: not ours
                raw_tokens = _read_exactly(handle, 4 * header.n_tokens)
                if zlib.crc32(raw_tokens) != header.tokens_crc32:
                    raise CorruptStateError("its checksum does not match")
                data: bytearray | memoryview = bytearray()
                if with_data and header.data_bytes:
                    data = _mapped(handle, header.data_bytes)
                    if data_checksum(data) != header.data_checksum:
                        raise CorruptStateError("its checksum does not match")
        except FileNotFoundError:
            return None
        except CorruptStateError as exc:
            self.discard(conversation_id, identity, str(exc))
            return None
        except OSError as exc:
            self._log(f"could not read the model state {path.name}: {exc}")
            return None
        tokens = array.array("i", raw_tokens)
        if sys.byteorder != "little":
            tokens.byteswap()
        return KvState(tuple(tokens), data)

    def _entries(self) -> list[tuple[Path, float, int]]:
        """The saved states, with when each was last used and its size."""
        entries: list[tuple[Path, float, int]] = []
        with contextlib.suppress(FileNotFoundError):
            for path in self._directory.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if path.suffix == SUFFIX:
                        stat = path.stat()
                        entries.append((path, stat.st_mtime, stat.st_size))
        return entries

    def _temporary_sizes(self) -> list[int]:
        """The sizes of temporary files of writes under way, after removing those of writes
        that died (a killed process leaves its file behind, possibly gigabytes)."""
        sizes: list[int] = []
        with contextlib.suppress(FileNotFoundError):
            for path in self._directory.glob("*.tmp"):
                with contextlib.suppress(OSError):  # gone, or a folder that cannot be changed
                    stat = path.stat()
                    if _writer_gone(path.name, stat.st_mtime):
                        path.unlink()
                    else:
                        sizes.append(stat.st_size)
        return sizes

    def _evict(self, keep: Path) -> None:
        entries = sorted(self._entries(), key=lambda entry: entry[1])
        # Writes under way count: they become states, and take the disk meanwhile.
        total = sum(size for _, _, size in entries) + sum(self._temporary_sizes())
        for path, _, size in entries:
            if total <= self._limit_bytes:
                break
            if path == keep:
                continue
            with contextlib.suppress(OSError):
                path.unlink()
            total -= size

    def _log(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        # The log is a diagnostic aid: failing to extend it must not fail the answer.
        try:
            self._log_file.parent.mkdir(parents=True, exist_ok=True)
            with self._log_file.open("a", encoding="utf-8") as handle:
                handle.write(f"{stamp} pid {os.getpid()} kv-cache: {line}\n")
        except OSError as exc:
            reason = exc.strerror or exc
            self._tell(self._log_file, f"cannot write termllm's log {self._log_file}: {reason}")

    def _tell(self, path: Path, warning: str) -> None:
        if self._side_writes is not None:
            self._side_writes.failed(path, warning)


def _writer_gone(name: str, modified: float) -> bool:
    """Whether a temporary file's writer is gone: its process has ended, or the file has not
    grown for _STALE_TEMP_S (its pid was reused). A writer in another machine or container
    sharing the folder may look ended: it then loses one state, a cache entry, nothing more."""
    if time.time() - modified > _STALE_TEMP_S:
        return True
    match = _TEMP_WRITER.search(name)
    if match is None:
        return False  # not named by a writer of ours: only its age tells
    try:
        os.kill(int(match.group(1)), 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        pass  # another user's process, so alive; a number too large to be a pid
    return False


def _read_header(stream: BinaryIO, file_size: int) -> _Header:
    if stream.read(len(MAGIC)) != MAGIC:
        raise CorruptStateError("it is not a termllm state file of this version")
    (length,) = _HEADER_LENGTH.unpack(_read_exactly(stream, _HEADER_LENGTH.size))
    try:
        fields = json.loads(_read_exactly(stream, length))
        header = _Header(
            identity=str(fields["identity"]),
            conversation_id=str(fields["conversation"]),
            n_tokens=int(fields["tokens"]),
            data_bytes=int(fields["data_bytes"]),
            tokens_crc32=int(fields["tokens_crc32"]),
            data_checksum=int(fields["data_checksum"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptStateError("its header is damaged") from exc
    expected = len(MAGIC) + _HEADER_LENGTH.size + length + 4 * header.n_tokens + header.data_bytes
    if header.n_tokens < 0 or header.data_bytes < 0 or expected != file_size:
        raise CorruptStateError(f"it holds {file_size} bytes, its header says {expected}")
    return header


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise CorruptStateError("it is shorter than its header says")
    return data


def _mapped(handle: BinaryIO, size: int) -> memoryview:
    """The `size` bytes after the handle's position, mapped rather than read.

    Private pages (copy on write) are writable, as ctypes wants a buffer it hands on to be,
    and are never written. A mapped file that shrinks faults the process when it is read:
    termllm never changes a state file in place (a write replaces it whole, see `write`), and
    a replaced or deleted file stays readable through a mapping made before.
    """
    start = handle.tell()
    mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    return memoryview(mapping)[start : start + size]


def data_checksum(data: bytearray | memoryview) -> int:
    """A Fletcher-style checksum of `data` in 4 KiB blocks, 128 bits: the sum of the running
    sums of its 64-bit words after each block, then the sum of all its words (modulo 2^64).

    It catches what damages a cache file (any changed word, zeroed or lost blocks, blocks out
    of order) at the speed numpy sums memory: 20-25 ms for 185 MB here, against 100 ms for a
    CRC-32, more than all the rest of a restore. (numpy is loaded with llama_cpp already.)
    """
    import numpy as np

    whole = len(data) // 8
    words = np.frombuffer(data, dtype="<u8", count=whole)
    blocked = whole - whole % _BLOCK_WORDS
    sums = words[:blocked].reshape(-1, _BLOCK_WORDS).sum(axis=1, dtype=np.uint64)
    rest = int(words[blocked:].sum(dtype=np.uint64)) + int.from_bytes(data[8 * whole :], "little")
    running = np.cumsum(np.append(sums, np.uint64(rest % 2**64)), dtype=np.uint64)
    return (int(running.sum(dtype=np.uint64)) << 64) | int(running[-1])
