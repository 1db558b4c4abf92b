"""Writing into the standard Hub cache: names checked, blobs, partials, locks, links and refs.

    models--owner--name/
      blobs/<etag>                  the bytes (etag = LFS sha256, or the git blob id)
      blobs/<etag>.incomplete       an interrupted download, resumed by the next pull
      refs/<revision>               the commit a branch or tag pointed to
      snapshots/<commit>/<path>     relative symlink to ../../blobs/<etag> (deeper paths, more ..)
    .locks/models--owner--name/<etag>.lock

Names and locks are huggingface_hub's own: `hf cache ls` reports our partials as incomplete
downloads (and `hf cache prune` removes them), and a concurrent hf_hub_download of the same blob
waits on the same lock instead of racing us.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from termllm.errors import HubError, RefusedError, StorageError
from termllm.hub.cache import repo_folder
from termllm.safe_text import one_line

_GIT_OID = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Longest file name (per folder level) that ext4, APFS, NTFS and their kin accept, and a bound
# for the whole path, which ends up in the cache folder, a progress line and error messages.
_MAX_NAME_BYTES = 255
_MAX_PATH_BYTES = 1024


def check_repo_path(path: str, what: str = "file") -> None:
    """Refuse a repo path that could land outside its snapshot folder once joined to it."""
    if _escapes(path):
        raise RefusedError(
            f"refusing the {what} name {one_line(repr(path), max_chars=120)}:"
            " it would escape the model cache"
        )


def _escapes(path: str) -> bool:
    return (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\0" in path
        or any(segment in ("", ".", "..") for segment in path.split("/"))
    )


def is_safe_repo_path(path: str) -> bool:
    """Whether a name the Hub lists can be pulled and shown as it is: a relative path of plain
    folder and file names, each of which fits a file system, with no character a terminal would
    act on."""
    # Unicode's "other" characters (control, format, surrogate, private, unassigned) and every
    # separator but the plain space are not printable: each can rewrite, split or disguise what
    # a terminal shows. Checked first, as a lone surrogate cannot be encoded to count bytes.
    if not path.isprintable():
        return False
    return (
        not _escapes(path)
        and len(path.encode()) <= _MAX_PATH_BYTES
        and all(len(segment.encode()) <= _MAX_NAME_BYTES for segment in path.split("/"))
    )


def check_commit(commit: str) -> None:
    if not _GIT_OID.fullmatch(commit):
        raise HubError(f"the Hub sent an invalid commit id {one_line(repr(commit), max_chars=60)}")


def check_blob_name(etag: str, path: str, *, lfs: bool) -> None:
    """Blob names become file names: only the hex hashes the Hub publishes are accepted."""
    if not (_SHA256 if lfs else _GIT_OID).fullmatch(etag):
        raise HubError(
            f"the Hub sent an invalid hash {one_line(repr(etag), max_chars=80)}"
            f" for {one_line(path, max_chars=120)}"
        )


class RepoCache:
    """The cache folders of one repo. Building one writes nothing."""

    def __init__(self, cache_dir: Path, repo_id: str) -> None:
        self.cache_dir = cache_dir
        self.folder = repo_folder(cache_dir, repo_id)
        self.locks = cache_dir / ".locks" / self.folder.name

    def blob(self, etag: str) -> Path:
        return self.folder / "blobs" / etag

    def partial(self, etag: str) -> Path:
        return self.folder / "blobs" / f"{etag}.incomplete"

    def lock(self, etag: str) -> Path:
        return self.locks / f"{etag}.lock"

    def snapshot(self, commit: str, path: str) -> Path:
        return self.folder / "snapshots" / commit / path

    def prepare(self, commit: str) -> None:
        """Create the folders a download writes to, before its first byte.

        The snapshot folder too, like huggingface_hub does: a repo folder without snapshots/
        is reported as corrupted by `hf cache` while a first pull is interrupted.
        """
        for folder in (self.folder / "blobs", self.folder / "snapshots" / commit, self.locks):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise storage_error(folder, err) from err

    def link(self, snapshot: Path, blob: Path) -> None:
        """Point `snapshot` at `blob` with a relative symlink, replacing whatever was there."""
        target = os.path.relpath(blob, snapshot.parent)
        temporary = snapshot.with_name(f".{snapshot.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            snapshot.parent.mkdir(parents=True, exist_ok=True)
            temporary.symlink_to(target)
            # A rename over the old entry is atomic: readers see the old link or the new one.
            temporary.replace(snapshot)
        except OSError as err:
            temporary.unlink(missing_ok=True)
            raise storage_error(snapshot, err) from err

    def write_ref(self, revision: str, commit: str) -> None:
        """Record what `revision` points to; a no-op when it already says so."""
        ref = self.folder / "refs" / revision
        try:
            if ref.is_file() and ref.read_text(encoding="utf-8").strip() == commit:
                return
            ref.parent.mkdir(parents=True, exist_ok=True)
            temporary = ref.with_name(f"{ref.name}.{uuid.uuid4().hex[:8]}.tmp")
            temporary.write_text(commit, encoding="utf-8")
            temporary.replace(ref)
        except OSError as err:
            raise storage_error(ref, err) from err


def storage_error(path: Path, err: OSError) -> StorageError:
    return StorageError(f"cannot write {path}: {err.strerror or err}")


def is_complete(path: Path, size: int) -> bool:
    """Whether `path` (following a link) is a file of the expected size."""
    try:
        return path.is_file() and path.stat().st_size == size
    except OSError:
        return False
