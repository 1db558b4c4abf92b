"""Turning huggingface_hub and httpx2 exceptions into termllm's one-line user errors."""

from __future__ import annotations

import re
from dataclasses import dataclass

from termllm.errors import HubError, ModelNotFoundError, ModelRefError, NetworkError, TermllmError
from termllm.safe_text import one_line


@dataclass(frozen=True)
class Target:
    """What a request was about, so that an error can name it."""

    endpoint: str
    repo_id: str
    revision: str | None = None
    filename: str | None = None

    @property
    def where(self) -> str:
        if not self.revision:
            return f"'{self.repo_id}'"
        return f"'{self.repo_id}' at revision '{one_line(self.revision, max_chars=80)}'"

    @property
    def file(self) -> str:
        """The file's name as an error may quote it."""
        return one_line(self.filename or "", max_chars=120)


def offline_error(target: Target) -> NetworkError:
    subject = f"{target.repo_id}/{target.file}" if target.filename else target.repo_id
    return NetworkError(f"offline mode (HF_HUB_OFFLINE) is on and {subject} is not in the cache")


def translate(err: Exception, target: Target, timeout_s: float) -> TermllmError:
    """The user-facing error for `err`, raised while talking to the Hub about `target`."""
    from termllm.hub import hf

    repo = target.repo_id
    # GatedRepoError subclasses RepositoryNotFoundError, so it must be tested first.
    if isinstance(err, hf.GatedRepoError):
        return HubError(f"'{repo}' is gated: accept its terms on the Hub and set HF_TOKEN")
    if isinstance(err, hf.RepositoryNotFoundError):
        return ModelNotFoundError(
            f"repository '{repo}' not found on {target.endpoint}"
            " (check the name, or set HF_TOKEN for a private repo)"
        )
    if isinstance(err, hf.RevisionNotFoundError):
        return ModelNotFoundError(
            f"revision '{one_line(target.revision or '', max_chars=80)}' not found in '{repo}'"
        )
    if isinstance(err, hf.EntryNotFoundError):
        return ModelNotFoundError(f"'{target.file}' not found in {target.where}")
    if isinstance(err, hf.DisabledRepoError):
        return HubError(f"'{repo}' has been disabled on the Hub")
    if isinstance(err, hf.HfHubHTTPError):
        return _status_error(err.response.status_code, err.response.reason_phrase, target)
    if isinstance(err, hf.HFValidationError):
        return ModelRefError(f"'{repo}' is not a valid repository name (expected owner/name)")
    if isinstance(err, hf.OfflineModeIsEnabled):
        return offline_error(target)
    return unreachable(err, f"the Hub at {target.endpoint}", timeout_s)


def unreachable(err: Exception, server: str, timeout_s: float) -> NetworkError:
    """A connection-level failure: refused, unknown host, timeout, or dropped mid-transfer.

    `server` names who failed: "the Hub at https://…" or "the download server …".
    """
    from termllm.hub import hf

    if isinstance(err, hf.httpx2.TimeoutException):
        reason = f"no answer within {timeout_s:g} s"
    else:
        # "[Errno 111] Connection refused" reads better as "connection refused". The text may
        # quote what the server sent (a malformed status line, say): printable, and short.
        text = re.sub(r"^\[Errno -?\d+\]\s*", "", one_line(str(err), max_chars=200))
        text = text or type(err).__name__
        reason = text[0].lower() + text[1:]
    if isinstance(err, hf.httpx2.ReadError | hf.httpx2.WriteError | hf.httpx2.ProtocolError):
        return NetworkError(f"lost the connection to {server}: {reason}")
    return NetworkError(f"cannot reach {server}: {reason}")


def _status_error(status: int, reason: str, target: Target) -> HubError:
    reason = one_line(reason, max_chars=60) or "no reason given"
    if status >= 500:
        return HubError(
            f"the Hub at {target.endpoint} answered HTTP {status} ({reason}); try again later"
        )
    if status == 429:
        return HubError("the Hub is rate-limiting requests (HTTP 429); try again later")
    if status in (401, 403):
        return HubError(
            f"the Hub refused access to '{target.repo_id}' (HTTP {status}); check HF_TOKEN"
        )
    return HubError(
        f"the Hub at {target.endpoint} answered HTTP {status} ({reason}) for {target.where}"
    )
