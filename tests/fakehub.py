"""A fake Hugging Face Hub on 127.0.0.1: API and resolve endpoints on one port, a CDN on another.

It answers what huggingface_hub and termllm.hub send: model info (with `?blobs=true` sizes and LFS
hashes), `resolve` with the Hub's headers and a 302 to the CDN for LFS files, ranged reads, and the
`X-Error-Code` header that huggingface_hub turns into typed errors. Every request is logged, and
faults can be injected into file bodies, and hostility into listings (trickles, odd names, bad
entries). Nothing here ever leaves the machine.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakehub_http import TOKEN, LoggedRequest, start_server

_SERVE_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FakeFile:
    """One file of a commit; `source` is a path for large files that are streamed from disk."""

    path: str
    size: int
    sha256: str
    git_oid: str
    lfs: bool
    data: bytes | None = None
    source: Path | None = None

    def open_chunks(self, start: int, end: int) -> Iterator[bytes]:
        """The bytes [start, end) in chunks, without loading a large file into memory."""
        if self.data is not None:
            for pos in range(start, end, _SERVE_CHUNK):
                yield self.data[pos : min(pos + _SERVE_CHUNK, end)]
            return
        assert self.source is not None
        with self.source.open("rb") as handle:
            handle.seek(start)
            pos = start
            while pos < end:
                chunk = handle.read(min(_SERVE_CHUNK, end - pos))
                if not chunk:
                    return
                pos += len(chunk)
                yield chunk


@dataclass
class FakeRepo:
    repo_id: str
    gated: bool
    private: bool
    refs: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, FakeFile]] = field(default_factory=dict)
    downloads: int = 0
    likes: int = 0
    parameter_count: int | None = None
    """What the Hub's own reading of the GGUF header says (`gguf.total`); None: not read."""
    last_modified: str = "2025-01-01T00:00:00.000Z"

    def commit_for(self, revision: str) -> str | None:
        if revision in self.commits:
            return revision
        return self.refs.get(revision)


class FakeHub:
    """Two loopback servers and the repos they serve. Use as a context manager or call close()."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[LoggedRequest] = []
        # Fault knobs, read by every body the servers send (hub non-LFS files and the CDN).
        self.drop_after_bytes: int | None = None
        """Close the connection once a body reaches this file offset (so a resume stalls there)."""
        self.drop_count: int | None = None
        """How many bodies `drop_after_bytes` cuts before serving whole again; None: all of them."""
        self.fail_with: int | None = None
        """Answer every request to the Hub port with this HTTP status (e.g. 503)."""
        self.corrupt = False
        """Serve the last byte of each file flipped, so it no longer matches its sha256."""
        self.ignore_range = False
        """Answer 200 with the whole file even when a Range was asked for."""
        self.delay_per_chunk = 0.0
        """Seconds to sleep before each 64 KiB chunk of a body."""
        self.trickle_from: int | None = None
        """From this file offset on, send file bodies one byte every `trickle_every` seconds."""
        self.trickle_listings = False
        """Send model info answers one byte every `trickle_every` seconds."""
        self.trickle_headers = False
        """Send the status line and headers of every answer one byte every `trickle_every` s."""
        self.trickle_every = 0.2
        self.edit_listing: Callable[[dict[str, Any]], object] | None = None
        """Rewrite each model info answer: the JSON value to send instead, or raw bytes."""
        self.edit_search: Callable[[list[dict[str, Any]]], object] | None = None
        """Rewrite each search answer: the JSON value to send instead, or raw bytes."""
        self.gzip_listings = False
        """Compress model info answers with gzip, although termllm asks for no compression."""
        self.resolve_headers: dict[str, str] = {}
        """Headers that replace or join those of every LFS file's resolve answer."""
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._counter = itertools.count()
        self._hub = start_server(self, "hub")
        self._cdn = start_server(self, "cdn")
        self.url = f"http://127.0.0.1:{self._hub.server_address[1]}"
        self.cdn_url = f"http://127.0.0.1:{self._cdn.server_address[1]}"

    def __enter__(self) -> FakeHub:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        for server in (self._hub, self._cdn):
            server.shutdown()
            server.server_close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes | Path],
        *,
        gated: bool = False,
        private: bool = False,
        revision: str = "main",
    ) -> str:
        """Create `repo_id` (or add a commit) with `files` under `revision`; returns the commit.

        `.gguf` files are stored as LFS files (served through the CDN), others as plain git files.
        A Path value is streamed from disk when served.
        """
        built = {path: _make_file(path, content) for path, content in files.items()}
        seed = json.dumps(
            [
                repo_id,
                revision,
                next(self._counter),
                sorted((p, f.git_oid) for p, f in built.items()),
            ]
        )
        commit = hashlib.sha1(seed.encode()).hexdigest()
        with self._lock:
            repo = self.repos.setdefault(repo_id, FakeRepo(repo_id, gated, private))
            repo.commits[commit] = built
            repo.refs[revision] = commit
        return commit

    def set_stats(
        self,
        repo_id: str,
        *,
        downloads: int = 0,
        likes: int = 0,
        parameter_count: int | None = None,
        last_modified: str = "2025-01-01T00:00:00.000Z",
    ) -> None:
        """What the search API reports about `repo_id` besides its name."""
        with self._lock:
            repo = self.repos[repo_id]
            repo.downloads, repo.likes = downloads, likes
            repo.parameter_count, repo.last_modified = parameter_count, last_modified

    def log(self, server: str | None = None, method: str | None = None) -> list[LoggedRequest]:
        """Logged requests, optionally only those of one server and method."""
        with self._lock:
            entries = list(self.requests)
        return [
            r
            for r in entries
            if (server is None or r.server == server) and (method is None or r.method == method)
        ]

    def file_gets(self) -> list[LoggedRequest]:
        """GET requests for file bytes: CDN reads and hub-served (non-LFS) resolves."""
        return [r for r in self.log(method="GET") if r.server == "cdn" or "/resolve/" in r.path]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def _record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    def _take_drop(self) -> int | None:
        """The offset at which the body about to be sent is cut, counting down `drop_count`."""
        with self._lock:
            if self.drop_after_bytes is None or self.drop_count == 0:
                return None
            if self.drop_count is not None:
                self.drop_count -= 1
            return self.drop_after_bytes

    def _blob(self, sha256: str) -> FakeFile | None:
        with self._lock:
            for repo in self.repos.values():
                for files in repo.commits.values():
                    for item in files.values():
                        if item.lfs and item.sha256 == sha256:
                            return item
        return None


@dataclass
class RecordingProgress:
    """A TransferProgress that remembers every call; `interrupt_after` raises Ctrl-C mid-file."""

    events: list[tuple[str, str, int, int]] = field(default_factory=list)
    advanced: int = 0
    interrupt_after: int | None = None

    def begin(self, label: str, total_bytes: int, done_bytes: int) -> None:
        self.events.append(("begin", label, total_bytes, done_bytes))

    def advance(self, n_bytes: int) -> None:
        self.advanced += n_bytes
        if self.interrupt_after is not None and self.advanced >= self.interrupt_after:
            raise KeyboardInterrupt

    def end(self) -> None:
        self.events.append(("end", "", 0, 0))

    @property
    def begins(self) -> list[tuple[str, str, int, int]]:
        return [event for event in self.events if event[0] == "begin"]


def _make_file(path: str, content: bytes | Path) -> FakeFile:
    lfs = path.lower().endswith(".gguf")
    if isinstance(content, Path):
        size = content.stat().st_size
        sha = hashlib.sha256()
        git = hashlib.sha1(f"blob {size}\0".encode())
        with content.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                sha.update(chunk)
                git.update(chunk)
        return FakeFile(path, size, sha.hexdigest(), git.hexdigest(), lfs, source=content)
    git_oid = hashlib.sha1(f"blob {len(content)}\0".encode() + content).hexdigest()
    sha256 = hashlib.sha256(content).hexdigest()
    return FakeFile(path, len(content), sha256, git_oid, lfs, data=content)


__all__ = ["TOKEN", "FakeFile", "FakeHub", "FakeRepo", "LoggedRequest", "RecordingProgress"]
