"""The one door to huggingface_hub and httpx2, imported on first use with termllm's defaults set.

huggingface_hub reads HF_HUB_DISABLE_TELEMETRY once, when it is imported; without it the first
request of the process asks the public Hub (whatever endpoint is configured) which agent harness
runs us. Setting the default here, before that import, keeps termllm quiet; a value the user set
explicitly still wins. Other modules import this one inside functions, so that importing termllm
never pays for huggingface_hub.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import httpx2
from huggingface_hub import get_session, hf_hub_url
from huggingface_hub.errors import (
    DisabledRepoError,
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

# huggingface_hub.utils re-exports these lazily, without listing them for type checkers.
from huggingface_hub.utils import (  # type: ignore[attr-defined]
    WeakFileLock,
    build_hf_headers,
    hf_raise_for_status,
    validate_repo_id,
)

__all__ = [
    "DisabledRepoError",
    "EntryNotFoundError",
    "GatedRepoError",
    "HFValidationError",
    "HfHubHTTPError",
    "OfflineModeIsEnabled",
    "RepositoryNotFoundError",
    "RevisionNotFoundError",
    "WeakFileLock",
    "build_hf_headers",
    "get_session",
    "hf_hub_url",
    "hf_raise_for_status",
    "httpx2",
    "validate_repo_id",
]
