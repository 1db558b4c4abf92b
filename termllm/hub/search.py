"""GGUF model repos on the Hub that match a query, from the Hub's model search API.

The request is what huggingface_hub's `HfApi.list_models(search=…, filter="gguf",
sort="downloads", limit=…, expand=[…])` sends, with `direction=-1` spelled out, but read like
repo_info reads model info: under the stall rule, up to MAX_SEARCH_BYTES, and entry by entry.
One page only: `limit` bounds the answer, so there is no Link header to follow.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from termllm.errors import NetworkError
from termllm.hub.failures import Target
from termllm.hub.repo_info import fetch_bounded, not_a_hub
from termllm.safe_text import one_line

if TYPE_CHECKING:
    from termllm.hub.http import HubHttp

# An entry with the fields asked for is ~300 bytes; this leaves room for 100 verbose ones.
MAX_SEARCH_BYTES = 4 * 1024 * 1024
_EXPAND = ("downloads", "likes", "lastModified", "gated", "private", "gguf")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
# Repo names are `owner/name` of at most 96 characters each; longer is not a name.
_MAX_REPO_CHARS = 200


@dataclass(frozen=True)
class HubModelResult:
    """One search hit. Strings came from the Hub and are already one safe line each."""

    repo_id: str
    parameter_count: int | None
    """From the Hub's reading of the repo's GGUF header; None when it has not read one."""
    downloads: int
    """Downloads in the last 30 days, as the Hub counts and sorts them."""
    likes: int
    last_modified: str | None
    """The date of the last commit, YYYY-MM-DD."""
    gated: bool


def search_models(http: HubHttp, query: str, limit: int) -> tuple[HubModelResult, ...]:
    """Up to `limit` GGUF repos matching `query`, most downloaded first."""
    target = Target(http.endpoint, one_line(query, max_chars=80))
    if http.offline:
        raise NetworkError("offline mode (HF_HUB_OFFLINE) is on: searching the Hub needs it off")
    params: list[tuple[str, str | int]] = [
        ("search", query),
        ("filter", "gguf"),
        ("sort", "downloads"),
        ("direction", -1),
        ("limit", limit),
    ]
    params += [("expand", field) for field in _EXPAND]
    url = f"{http.endpoint}/api/models?{urlencode(params)}"
    body = fetch_bounded(http, url, target, MAX_SEARCH_BYTES, "the Hub's search results")
    return parse_search(body, target)[:limit]


def parse_search(body: bytes, target: Target) -> tuple[HubModelResult, ...]:
    """The results in a model search answer; a malformed answer is "not a Hub"."""
    try:
        data = json.loads(body)
    # A hostile answer can nest deeper than the parser's stack; JSON errors are ValueErrors.
    except (ValueError, RecursionError) as err:
        raise not_a_hub(target, "its answer is not JSON") from err
    if not isinstance(data, list):
        raise not_a_hub(target, "its search answer is not a list")
    return tuple(_result(entry, target) for entry in data)


def _result(entry: Any, target: Target) -> HubModelResult:
    if not isinstance(entry, dict):
        raise not_a_hub(target, "a search result is not an object")
    repo_id = entry.get("id", entry.get("modelId"))
    if not isinstance(repo_id, str) or not repo_id:
        raise not_a_hub(target, "a search result has no repository name")
    gguf = entry.get("gguf")
    modified = entry.get("lastModified")
    return HubModelResult(
        repo_id=one_line(repo_id, max_chars=_MAX_REPO_CHARS),
        parameter_count=_count(gguf.get("total")) if isinstance(gguf, dict) else None,
        downloads=_count(entry.get("downloads")) or 0,
        likes=_count(entry.get("likes")) or 0,
        last_modified=(
            modified[:10] if isinstance(modified, str) and _ISO_DATE.match(modified) else None
        ),
        # The Hub says False, "auto" or "manual"; any other truthy value is treated as gated.
        gated=bool(entry.get("gated")),
    )


def _count(value: object) -> int | None:
    """A non-negative JSON integer; anything else (a string, a bool, a float) is unknown."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
