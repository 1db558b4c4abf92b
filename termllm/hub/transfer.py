"""Fetching one blob: resumed from its partial file, verified, and only then renamed into place.

The partial file is never deleted on interruption (Ctrl-C, a killed process, a dropped
connection, a stalled server, a full disk): the next call hashes what is already there and asks
for the rest with `Range: bytes=N-`. It is deleted only when the finished bytes fail verification.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import FileIO
from pathlib import Path
from typing import Protocol

from termllm.domain import TransferProgress
from termllm.errors import HubError, IntegrityError, NetworkError
from termllm.hub.failures import Target
from termllm.hub.http import HubHttp, body_span
from termllm.hub.layout import storage_error

CHUNK_BYTES = 1 << 20
# Consecutive failed attempts that brought no new byte before giving up; progress resets it.
_MAX_FAILED_ATTEMPTS = 3
_RETRY_DELAY_S = 0.5


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


@dataclass(frozen=True)
class BlobJob:
    """One blob to fetch: where from, where to, and the hash that names it and must match.

    `etag` is the LFS sha256 for LFS files; for files kept in git it is the git blob id: the sha1
    of a `blob <size>` header, a NUL byte, then the bytes.
    """

    url: str
    target: Target
    label: str
    size: int
    partial: Path
    blob: Path
    etag: str
    lfs: bool

    def new_digest(self) -> Digest:
        if self.lfs:
            return hashlib.sha256()
        digest = hashlib.sha1(usedforsecurity=False)
        digest.update(f"blob {self.size}\0".encode())
        return digest


def fetch_blob(http: HubHttp, job: BlobJob, progress: TransferProgress) -> None:
    """Complete `job.partial`, verify it and rename it to `job.blob`. The caller holds the lock."""
    from termllm.hub import hf

    state = _State(job)
    try:
        state.resume()
        progress.begin(job.label, job.size, state.done)
        failures = 0
        while state.done < job.size:
            before = state.done
            try:
                _attempt(http, job, state, progress)
            except hf.httpx2.TransportError as err:
                failures = 1 if state.done > before else failures + 1
                first_contact = before == 0 and state.done == 0 and _is_connect_error(err)
                if first_contact or failures >= _MAX_FAILED_ATTEMPTS:
                    raise _gave_up(http.network_error(err, job.url), job, state.done) from err
                time.sleep(_RETRY_DELAY_S * failures)
            except NetworkError as err:
                # A stalled body: a retry would stall again, so the next pull resumes instead.
                raise _gave_up(err, job, state.done) from err
        state.verify()
    except IntegrityError:
        job.partial.unlink(missing_ok=True)
        raise
    _publish(job)


class _State:
    """The partial file's length and the running hash of its bytes."""

    def __init__(self, job: BlobJob) -> None:
        self.job = job
        self.done = 0
        self.digest = job.new_digest()

    def resume(self) -> None:
        """Hash the bytes an earlier run left, or start over if there are too many."""
        job = self.job
        try:
            size = job.partial.stat().st_size
        except FileNotFoundError:
            return
        except OSError as err:
            raise storage_error(job.partial, err) from err
        if size > job.size:
            self.restart()
            return
        try:
            with job.partial.open("rb") as handle:
                # Bounded by the size seen above, in case the file grows (or is not a file).
                while self.done < size and (
                    chunk := handle.read(min(CHUNK_BYTES, size - self.done))
                ):
                    self.digest.update(chunk)
                    self.done += len(chunk)
        except OSError as err:
            raise storage_error(job.partial, err) from err

    def restart(self) -> None:
        try:
            self.job.partial.unlink(missing_ok=True)
        except OSError as err:
            raise storage_error(self.job.partial, err) from err
        self.done = 0
        self.digest = self.job.new_digest()

    def verify(self) -> None:
        job = self.job
        got = self.digest.hexdigest()
        if got != job.etag:
            name = "sha256" if job.lfs else "git blob id"
            raise _mismatch(job, f"{name} mismatch (expected {job.etag}, got {got})")


def _attempt(http: HubHttp, job: BlobJob, state: _State, progress: TransferProgress) -> None:
    byte_range = f"bytes={state.done}-" if state.done else None
    with http.open("GET", job.url, job.target, byte_range=byte_range) as response:
        start, total = body_span(response)
        if total is not None and total != job.size:
            raise _mismatch(job, f"the server has {total} bytes where the Hub announced {job.size}")
        if start != state.done:
            if start != 0:
                raise HubError(
                    f"the download server sent {job.label} from byte {start}, not {state.done}"
                )
            # The server ignored the Range header and sends everything: start the file again.
            state.restart()
            progress.begin(job.label, job.size, 0)
        _write_body(job, state, http.body(response), progress)


def _write_body(
    job: BlobJob, state: _State, chunks: Iterator[bytes], progress: TransferProgress
) -> None:
    try:
        # Unbuffered: every byte counted below is already in the file when a kill comes.
        handle = job.partial.open("ab", buffering=0)
    except OSError as err:
        raise storage_error(job.partial, err) from err
    with handle:
        for chunk in chunks:
            if state.done + len(chunk) > job.size:
                raise _mismatch(job, f"the server sent more than the {job.size} bytes announced")
            _write_all(handle, chunk, job.partial)
            state.digest.update(chunk)
            state.done += len(chunk)
            progress.advance(len(chunk))


def _write_all(handle: FileIO, data: bytes, path: Path) -> None:
    view = memoryview(data)
    try:
        while view:
            # A full disk may take part of a chunk before refusing the rest.
            written = handle.write(view)
            if not written:
                raise OSError(errno.EIO, "the file accepted no bytes")
            view = view[written:]
    except OSError as err:
        raise storage_error(path, err) from err


def _publish(job: BlobJob) -> None:
    """fsync, then rename: after a crash the blob is either whole or absent."""
    try:
        with job.partial.open("rb") as handle:
            os.fsync(handle.fileno())
        job.partial.replace(job.blob)
        directory = os.open(job.blob.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as err:
        raise storage_error(job.blob, err) from err


def _mismatch(job: BlobJob, detail: str) -> IntegrityError:
    return IntegrityError(
        f"{job.label}: {detail}; the partial download was removed, run pull again"
    )


def _gave_up(error: NetworkError, job: BlobJob, done: int) -> NetworkError:
    if not done:
        return error
    return NetworkError(
        f"{error.message}; {job.label} is kept partly downloaded ({done} of {job.size} bytes),"
        " run pull again to resume"
    )


def _is_connect_error(err: Exception) -> bool:
    from termllm.hub import hf

    return isinstance(err, hf.httpx2.ConnectError | hf.httpx2.ConnectTimeout)
