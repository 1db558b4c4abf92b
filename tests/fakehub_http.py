"""The HTTP side of the fake Hub: request handlers for the Hub port and the CDN port."""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    from fakehub import FakeFile, FakeHub, FakeRepo

LFS_POINTER_SIZE = 134

TOKEN = "hf_fake_token_for_tests"
"""The only token the fake Hub accepts for gated and private repos."""


@dataclass(frozen=True)
class LoggedRequest:
    """One request as a server saw it: `server` is "hub" or "cdn"."""

    server: str
    method: str
    path: str
    query: str
    range: str | None
    authorization: str | None


def start_server(hub: FakeHub, name: str) -> ThreadingHTTPServer:
    handler = type(f"{name.title()}Handler", (_Handler,), {"hub": hub, "server_name": name})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, args=(0.02,), name=f"fakehub-{name}", daemon=True
    )
    thread.start()
    return server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeHub
    server_name: str

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        # Clients that hang up (killed processes, dropped transfers) are part of the tests.
        with suppress(ConnectionError):
            super().handle()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        self.hub._record(
            LoggedRequest(
                self.server_name,
                method,
                split.path,
                split.query,
                self.headers.get("Range"),
                self.headers.get("Authorization"),
            )
        )
        if self.server_name == "hub" and self.hub.fail_with is not None:
            self._error(self.hub.fail_with, None, "injected failure")
        elif self.server_name == "cdn":
            self._serve_cdn(method, split.path)
        else:
            self._serve_hub(method, split.path, parse_qs(split.query))

    # --- the Hub ------------------------------------------------------------------------------

    def _serve_hub(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts == ["api", "models"]:
            self._search(query)
        elif len(parts) >= 4 and parts[0] == "api" and parts[1] == "models":
            self._model_info(parts[2:], blobs=query.get("blobs") == ["true"])
        elif len(parts) >= 5 and parts[2] == "resolve":
            self._resolve(method, f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
        else:
            self._error(404, "NotFound", f"no route for {path}")

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {TOKEN}"

    def _find_repo(self, repo_id: str) -> FakeRepo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized()):
            # The real Hub hides private repos behind the same answer as missing ones.
            status = 401 if self.headers.get("Authorization") is None else 404
            self._error(status, "RepoNotFound", "Repository not found")
            return None
        return repo

    def _model_info(self, parts: list[str], blobs: bool) -> None:
        repo_id = "/".join(parts[:2])
        revision = "main"
        if len(parts) >= 4 and parts[2] == "revision":
            revision = "/".join(parts[3:])
        elif len(parts) != 2:
            self._error(404, "NotFound", "unknown API route")
            return
        repo = self._find_repo(repo_id)
        if repo is None:
            return
        commit = repo.commit_for(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        siblings: list[dict[str, Any]] = []
        for item in repo.commits[commit].values():
            sibling: dict[str, Any] = {"rfilename": item.path}
            if blobs:
                sibling["size"] = item.size
                sibling["blobId"] = item.git_oid
                if item.lfs:
                    sibling["lfs"] = {
                        "sha256": item.sha256,
                        "size": item.size,
                        "pointerSize": LFS_POINTER_SIZE,
                    }
            siblings.append(sibling)
        # Gated repos list their files publicly, like the real Hub; only file reads are refused.
        body = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit,
            "private": repo.private,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": ["gguf"],
            "lastModified": "2025-01-01T00:00:00.000Z",
            "createdAt": "2025-01-01T00:00:00.000Z",
            "siblings": siblings,
        }
        edited = body if self.hub.edit_listing is None else self.hub.edit_listing(body)
        payload = edited if isinstance(edited, bytes) else json.dumps(edited).encode()
        headers = {"Content-Type": "application/json"}
        if self.hub.gzip_listings:
            payload = gzip.compress(payload)
            headers["Content-Encoding"] = "gzip"
        headers["Content-Length"] = str(len(payload))
        self._head(200, headers)
        if self.command == "HEAD":
            return
        if not self.hub.trickle_listings:
            self.wfile.write(payload)
        elif not self._trickle(payload):
            self.close_connection = True

    def _search(self, query: dict[str, list[str]]) -> None:
        """The model search API: name contains the words, GGUF filter, by downloads, descending.

        Like the real Hub, `expand` names the fields each entry carries besides its id.
        """
        words = query.get("search", [""])[0].lower()
        limit = int(query.get("limit", ["1000"])[0])
        expand = query.get("expand", [])
        gguf_only = "gguf" in query.get("filter", [])
        descending = query.get("direction", ["-1"])[0] == "-1"
        found: list[FakeRepo] = []
        for repo in list(self.hub.repos.values()):
            files = repo.commits[repo.refs["main"]] if "main" in repo.refs else {}
            if repo.private or words not in repo.repo_id.lower():
                continue
            if gguf_only and not any(path.lower().endswith(".gguf") for path in files):
                continue
            found.append(repo)
        found.sort(key=lambda repo: repo.downloads, reverse=descending)
        entries = []
        for repo in found[:limit]:
            fields: dict[str, Any] = {
                "downloads": repo.downloads,
                "likes": repo.likes,
                "lastModified": repo.last_modified,
                "gated": "manual" if repo.gated else False,
                "private": repo.private,
            }
            if repo.parameter_count is not None:
                fields["gguf"] = {"total": repo.parameter_count, "architecture": "llama"}
            entry: dict[str, Any] = {"_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24]}
            entry["id"] = repo.repo_id
            entry.update({name: value for name, value in fields.items() if name in expand})
            entries.append(entry)
        edited = entries if self.hub.edit_search is None else self.hub.edit_search(entries)
        payload = edited if isinstance(edited, bytes) else json.dumps(edited).encode()
        self._head(200, {"Content-Type": "application/json", "Content-Length": str(len(payload))})
        self.wfile.write(payload)

    def _resolve(self, method: str, repo_id: str, revision: str, path: str) -> None:
        repo = self._find_repo(repo_id)
        if repo is None:
            return
        commit = repo.commit_for(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        if repo.gated and not self._authorized():
            status = 401 if self.headers.get("Authorization") is None else 403
            self._error(status, "GatedRepo", f"Access to model {repo_id} is restricted.")
            return
        item = repo.commits[commit].get(path)
        if item is None:
            self._error(404, "EntryNotFound", f"{path} does not exist on {revision}")
            return
        headers = {"X-Repo-Commit": commit}
        if not item.lfs:
            headers["ETag"] = f'"{item.git_oid}"'
            self._send_body(method, item, headers)
            return
        headers.update(
            {
                "ETag": f'"{item.git_oid}"',
                "X-Linked-Etag": f'"{item.sha256}"',
                "X-Linked-Size": str(item.size),
                "Location": f"{self.hub.cdn_url}/blobs/{item.sha256}?expires=never&sig=fake",
                "Content-Length": "0",
            }
        )
        self._head(302, headers | self.hub.resolve_headers)

    # --- the CDN ------------------------------------------------------------------------------

    def _serve_cdn(self, method: str, path: str) -> None:
        parts = path.strip("/").split("/")
        item = self.hub._blob(parts[1]) if len(parts) == 2 and parts[0] == "blobs" else None
        if item is None:
            self._json(404, {"error": "NoSuchKey"})
            return
        self._send_body(method, item, {"ETag": f'"{item.sha256}"'})

    # --- bodies and errors ----------------------------------------------------------------------

    def _send_body(self, method: str, item: FakeFile, headers: dict[str, str]) -> None:
        start, end = 0, item.size
        status = 200
        wanted = None if self.hub.ignore_range else _parse_range(self.headers.get("Range"))
        if wanted is not None:
            first, last = wanted
            if first >= item.size:
                self._head(416, {"Content-Range": f"bytes */{item.size}", "Content-Length": "0"})
                return
            start, end = first, item.size if last is None else min(last + 1, item.size)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{item.size}"
        headers["Accept-Ranges"] = "bytes"
        headers["Content-Type"] = "application/octet-stream"
        headers["Content-Length"] = str(end - start)
        self._head(status, headers)
        if method == "HEAD":
            return
        drop_at = self.hub._take_drop()
        pos = start
        for chunk in item.open_chunks(start, end):
            if self.hub.delay_per_chunk:
                time.sleep(self.hub.delay_per_chunk)
            if self.hub.closed:
                break
            if drop_at is not None and pos + len(chunk) > drop_at:
                chunk = chunk[: max(0, drop_at - pos)]
            if self.hub.corrupt and pos + len(chunk) == item.size and chunk:
                chunk = chunk[:-1] + bytes([chunk[-1] ^ 0xFF])
            trickle_from = self.hub.trickle_from
            if trickle_from is not None and pos + len(chunk) > trickle_from:
                cut = max(0, trickle_from - pos)
                self.wfile.write(chunk[:cut])
                if not self._trickle(chunk[cut:]):
                    break
            else:
                self.wfile.write(chunk)
            pos += len(chunk)
            if drop_at is not None and pos >= drop_at:
                break
        if pos < end:
            self.wfile.flush()
            self.close_connection = True

    def _trickle(self, data: bytes) -> bool:
        """Send `data` one byte at a time, `trickle_every` seconds apart (each byte restarts a
        client's read timeout); False if the hub closed meanwhile."""
        for index in range(len(data)):
            time.sleep(self.hub.trickle_every)
            if self.hub.closed:
                return False
            self.wfile.write(data[index : index + 1])
        return True

    def _head(self, status: int, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if not self.hub.trickle_headers:
            self.end_headers()
            return
        # The status line and headers BaseHTTPRequestHandler has buffered, sent byte by byte.
        block = b"".join(self._headers_buffer) + b"\r\n"
        self._headers_buffer = []
        if not self._trickle(block):
            self.close_connection = True

    def _json(self, status: int, body: object, headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json", "Content-Length": str(len(payload))}
        all_headers.update(headers or {})
        self._head(status, all_headers)
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _error(self, status: int, code: str | None, message: str) -> None:
        headers = {"X-Error-Message": message} | ({"X-Error-Code": code} if code else {})
        self._json(status, {"error": message}, headers)


def _parse_range(value: str | None) -> tuple[int, int | None] | None:
    """`bytes=a-b` or `bytes=a-`; anything else (suffix, multiple ranges) is served whole."""
    if not value or not value.startswith("bytes=") or "," in value:
        return None
    first, _, last = value[len("bytes=") :].partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    return int(first), int(last) if last else None
