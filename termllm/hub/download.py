"""`termllm pull`'s engine: files of one commit into the standard Hub cache, resumably.

The result is indistinguishable from huggingface_hub's own downloads (scan_cache_dir and
hf_hub_download(local_files_only=True) find the files), but an interrupted pull keeps its bytes
in blobs/<etag>.incomplete and the next one continues from there; see transfer.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from termllm.domain import TransferProgress
from termllm.errors import HubError
from termllm.hub.failures import Target, offline_error
from termllm.hub.layout import (
    RepoCache,
    check_blob_name,
    check_commit,
    check_repo_path,
    is_complete,
    storage_error,
)
from termllm.hub.listing import RemoteFile, RepoListing
from termllm.hub.transfer import BlobJob, fetch_blob

if TYPE_CHECKING:
    from termllm.hub.client import HubClient


def download(
    client: HubClient,
    listing: RepoListing,
    files: Sequence[RemoteFile],
    revision: str | None,
    progress: TransferProgress,
) -> list[Path]:
    """Make each of `files` present under snapshots/<commit>/ and return those paths.

    Files already there cost no request. `revision` (None means main) gets a ref to the commit.
    Every name is checked before anything is written.
    """
    client.check_repo_id(listing.repo_id)
    check_commit(listing.commit)
    ref = revision or "main"
    if ref != listing.commit:
        check_repo_path(ref, "revision")
    for item in files:
        check_repo_path(item.path)
        if item.sha256 is not None:
            check_blob_name(item.sha256, item.path, lfs=True)
    cache = RepoCache(client.cache_dir, listing.repo_id)
    paths: list[Path] = []
    for item in files:
        snapshot = cache.snapshot(listing.commit, item.path)
        if not is_complete(snapshot, item.size):
            _fetch_and_link(client, cache, listing, item, progress)
        # After each file, not at the end: a later failure must not hide the files already done.
        if ref != listing.commit:
            cache.write_ref(ref, listing.commit)
        paths.append(snapshot)
    return paths


def _fetch_and_link(
    client: HubClient,
    cache: RepoCache,
    listing: RepoListing,
    item: RemoteFile,
    progress: TransferProgress,
) -> None:
    from termllm.hub import hf

    url = client.file_url(listing.repo_id, item.path, listing.commit)
    target = Target(client.endpoint, listing.repo_id, listing.commit, item.path)
    etag = item.sha256 or _git_blob_id(client, url, target)
    snapshot = cache.snapshot(listing.commit, item.path)
    blob = cache.blob(etag)
    if client.offline and not is_complete(blob, item.size):
        raise offline_error(target)
    cache.prepare(listing.commit)
    with ExitStack() as stack:
        try:
            stack.enter_context(hf.WeakFileLock(cache.lock(etag)))
        except OSError as err:
            raise storage_error(cache.lock(etag), err) from err
        # Checked under the lock: another process may have finished this blob while we waited.
        if is_complete(blob, item.size):
            cache.link(snapshot, blob)
            return
        job = BlobJob(
            url=url,
            target=target,
            label=item.path,
            size=item.size,
            partial=cache.partial(etag),
            blob=blob,
            etag=etag,
            lfs=item.sha256 is not None,
        )
        fetch_blob(client.http, job, progress)
        cache.link(snapshot, blob)
    progress.end()


def _git_blob_id(client: HubClient, url: str, target: Target) -> str:
    """A small file kept in git has no LFS hash; its blob name is the git id the Hub sends."""
    probe = client.http.probe(url, target)
    if probe.etag is None:
        raise HubError(f"the Hub did not send an ETag for {target.file}")
    check_blob_name(probe.etag, target.filename or "", lfs=False)
    return probe.etag
