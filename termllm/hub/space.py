"""Disk space a pull needs: what is still to fetch of its files, and what the cache's
filesystem has free."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from termllm.hub.layout import RepoCache, is_complete
from termllm.hub.listing import RemoteFile


def bytes_to_fetch(cache_dir: Path, repo_id: str, files: Sequence[RemoteFile]) -> int:
    """Bytes of `files` not yet in the cache: a complete blob counts whole, and an interrupted
    download (blobs/<sha256>.incomplete) counts what it holds, since a pull resumes it."""
    cache = RepoCache(cache_dir, repo_id)
    missing = 0
    for item in files:
        if item.sha256 is None:
            missing += item.size  # git-stored files are small and named by an id the Hub sends
            continue
        if is_complete(cache.blob(item.sha256), item.size):
            continue
        try:
            held = cache.partial(item.sha256).stat().st_size
        except OSError:
            held = 0
        missing += item.size - min(held, item.size)
    return missing


def free_disk_bytes(cache_dir: Path) -> int | None:
    """Free space of the filesystem the cache is (or will be) on; None where it cannot be read."""
    folder = cache_dir
    # The cache may not exist yet: its nearest existing parent is on the same filesystem.
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None
