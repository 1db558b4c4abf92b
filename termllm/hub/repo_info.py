"""A repo's files at one commit, from the Hub's model info API, read with bounds and checked.

huggingface_hub's model_info waits on each read but not on the whole answer, reads it whole
whatever its size, and trusts its shape (a file name that is a number fails deep inside it).
termllm asks the same endpoint itself: the answer is read under HubHttp.body's stall rule and up
to MAX_LISTING_BYTES, and each entry is checked before it becomes a RemoteFile. A malformed
answer is "not a Hub"; a file whose name is not a safe relative path is left out, and named.
"""

from __future__ import annotations

import json
import zlib
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from termllm.errors import HubError
from termllm.hub.failures import Target, translate
from termllm.hub.layout import is_safe_repo_path
from termllm.hub.listing import RemoteFile, RepoListing
from termllm.safe_text import one_line

if TYPE_CHECKING:
    from termllm.hub.http import HubHttp

# A model info answer costs ~200 bytes a file: this is some 300,000 files, more than any model
# repo holds, and still a bounded amount of memory once parsed.
MAX_LISTING_BYTES = 64 * 1024 * 1024


def fetch_listing(http: HubHttp, repo_id: str, revision: str | None) -> RepoListing:
    """Every file of `repo_id` at `revision` (None: the default branch), with its size, hash
    and commit, from one request."""

    target = Target(http.endpoint, repo_id, revision)
    url = f"{http.endpoint}/api/models/{repo_id}"
    if revision is not None:
        url += f"/revision/{quote(revision, safe='')}"
    what = f"the Hub's list of files in {target.where}"
    body = fetch_bounded(http, f"{url}?blobs=true", target, MAX_LISTING_BYTES, what)
    return parse_listing(body, target)


def fetch_bounded(http: HubHttp, url: str, target: Target, limit: int, what: str) -> bytes:
    """The body of a GET to the Hub API, read under HubHttp.body's stall rule, decompressed if
    the server insisted, and refused past `limit` bytes (`what` names it in that error)."""
    from termllm.hub import hf

    parts: list[bytes] = []
    received = 0
    try:
        with http.open("GET", url, target) as response:
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            for chunk in http.body(response):
                received += len(chunk)
                if received > limit:
                    raise _too_large(what, limit)
                parts.append(chunk)
    except (hf.httpx2.HTTPError, hf.httpx2.InvalidURL, OSError) as err:
        raise translate(err, target, http.timeout_s) from err
    return _decoded(b"".join(parts), encoding, target, limit, what)


def _decoded(body: bytes, encoding: str, target: Target, limit: int, what: str) -> bytes:
    """termllm asks for no compression; a server that compresses anyway is still understood."""
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise not_a_hub(target, "it compressed its answer in an unknown way")
    # wbits 47: a gzip or a zlib header, whichever is there. The output is bounded like the
    # input, so a small compressed answer cannot unpack to gigabytes.
    decoder = zlib.decompressobj(47)
    try:
        data = decoder.decompress(body, limit + 1)
    except zlib.error as err:
        raise not_a_hub(target, "its compressed answer is corrupt") from err
    if len(data) > limit:
        raise _too_large(what, limit)
    return data


def parse_listing(body: bytes, target: Target) -> RepoListing:
    """The listing in a model info answer (with `blobs=true`), checked entry by entry."""
    try:
        data = json.loads(body)
    # A hostile answer can nest deeper than the parser's stack; JSON errors are ValueErrors.
    except (ValueError, RecursionError) as err:
        raise not_a_hub(target, "its answer is not JSON") from err
    if not isinstance(data, dict):
        raise not_a_hub(target, "its answer is not a JSON object")
    commit = data.get("sha")
    siblings = data.get("siblings")
    if not isinstance(commit, str | None) or not isinstance(siblings, list):
        raise not_a_hub(target, "its answer has no list of files")
    if not commit:
        raise HubError(f"the Hub did not say which commit {target.where} is at")
    files: list[RemoteFile] = []
    refused: list[str] = []
    for entry in siblings:
        item = _remote_file(entry, target)
        if is_safe_repo_path(item.path):
            files.append(item)
        else:
            refused.append(one_line(item.path, max_chars=80))
    return RepoListing(
        repo_id=target.repo_id, commit=commit, files=tuple(files), refused=tuple(refused)
    )


def _remote_file(entry: Any, target: Target) -> RemoteFile:
    if not isinstance(entry, dict) or not isinstance(entry.get("rfilename"), str):
        raise not_a_hub(target, "a file in its list has no name")
    path: str = entry["rfilename"]
    size = entry.get("size")
    if size is None:
        raise HubError(f"the Hub did not give the size of {one_line(path, max_chars=120)}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise not_a_hub(target, "a file in its list has no valid size")
    lfs = entry.get("lfs")
    if not lfs:
        return RemoteFile(path=path, size=size, sha256=None)
    if not isinstance(lfs, dict) or not isinstance(lfs.get("sha256"), str):
        raise not_a_hub(target, "a large file in its list has no sha256")
    return RemoteFile(path=path, size=size, sha256=lfs["sha256"])


def not_a_hub(target: Target, detail: str) -> HubError:
    return HubError(f"{target.endpoint} did not answer like a Hugging Face Hub ({detail})")


def _too_large(what: str, limit: int) -> HubError:
    return HubError(f"{what} is over {limit >> 20} MiB; termllm reads no more of it")
