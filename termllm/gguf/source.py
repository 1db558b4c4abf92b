"""Where GGUF bytes come from: a local file, or (in termllm.hub) HTTP range requests."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from termllm.errors import GGUFError, StorageError


class ByteSource(Protocol):
    """Random access to a file's bytes; only the header region is ever read."""

    @property
    def size(self) -> int:
        """Total size of the file in bytes."""

    @property
    def label(self) -> str:
        """What to call the file in error messages (a path or URL)."""

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes at `offset`; fewer only at the end of the file."""


class FileSource:
    """A local file. Opened per read so that no handle outlives the call."""

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            self._size = path.stat().st_size
        except FileNotFoundError as err:
            raise GGUFError(f"{path}: no such file") from err
        except OSError as err:
            raise StorageError(f"{path}: cannot read: {err.strerror or err}") from err
        if path.is_dir():
            raise GGUFError(f"{path}: is a folder, not a GGUF file")

    @property
    def size(self) -> int:
        return self._size

    @property
    def label(self) -> str:
        return str(self._path)

    def read_at(self, offset: int, length: int) -> bytes:
        try:
            with self._path.open("rb") as handle:
                handle.seek(offset)
                return handle.read(length)
        except OSError as err:
            raise StorageError(f"{self._path}: cannot read: {err.strerror or err}") from err
