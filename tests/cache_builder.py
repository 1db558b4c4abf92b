"""Builds repos in the standard Hub cache layout on disk, as huggingface_hub leaves them."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path


def add_cached_repo(
    cache_dir: Path,
    repo_id: str,
    files: Mapping[str, bytes],
    *,
    commit: str = "a" * 40,
    ref: str | None = "main",
) -> Path:
    """Write blobs, snapshot links and a ref; returns the snapshot folder."""
    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for repo_path, content in files.items():
        blob = repo / "blobs" / hashlib.sha256(content).hexdigest()
        blob.write_bytes(content)
        link = snapshot / repo_path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if ref:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snapshot
