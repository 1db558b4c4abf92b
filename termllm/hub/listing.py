"""What a Hub repo holds at one commit; plain values, free of huggingface_hub imports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None
    """The LFS object id; None for small files stored in git itself."""


@dataclass(frozen=True)
class RepoListing:
    repo_id: str
    commit: str
    files: tuple[RemoteFile, ...]
    refused: tuple[str, ...] = ()
    """Names listed by the Hub that are not safe relative paths (see layout.is_safe_repo_path),
    made printable and short; they are left out of `files` and never pulled."""
