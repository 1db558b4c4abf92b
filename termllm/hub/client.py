"""The Hub as termllm sees it: list a repo's files, name their URLs, read a file remotely.

Every call gets the endpoint explicitly: huggingface_hub reads HF_ENDPOINT once at import, and
termllm's settings (config file, TERMLLM_* variables, flags) must win over that.
"""

from __future__ import annotations

from pathlib import Path

from termllm.hub.failures import Target, offline_error, translate
from termllm.hub.http import HubHttp
from termllm.hub.layout import check_repo_path
from termllm.hub.listing import RepoListing
from termllm.hub.remote import HttpRangeSource
from termllm.hub.repo_info import fetch_listing
from termllm.hub.search import HubModelResult, search_models


class HubClient:
    """One Hub endpoint and one cache folder. `token=None` means HF_TOKEN or the saved token."""

    def __init__(
        self, endpoint: str, cache_dir: Path, token: str | None, offline: bool, timeout_s: float
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.cache_dir = cache_dir
        self.offline = offline
        self.timeout_s = timeout_s
        self.http = HubHttp(self.endpoint, token, offline, timeout_s)

    def __repr__(self) -> str:
        # Spelled out so that no debug print can ever show the token.
        return f"HubClient({self.endpoint!r}, cache_dir={str(self.cache_dir)!r})"

    def check_repo_id(self, repo_id: str) -> None:
        """Refuse names huggingface_hub refuses (`a/b/c`, `..`, `--`); they also name folders."""
        from termllm.hub import hf

        try:
            hf.validate_repo_id(repo_id)
        except hf.HFValidationError as err:
            raise translate(err, Target(self.endpoint, repo_id), self.timeout_s) from err

    def list_files(self, repo_id: str, revision: str | None) -> RepoListing:
        """Every file of `repo_id` at `revision` (default branch if None), with sizes and hashes.

        One request: model info with file metadata, which also names the commit.
        """
        if self.offline:
            raise offline_error(Target(self.endpoint, repo_id, revision))
        self.check_repo_id(repo_id)
        return fetch_listing(self.http, repo_id, revision)

    def search(self, query: str, limit: int) -> tuple[HubModelResult, ...]:
        """GGUF repos matching `query`, most downloaded first (one request)."""
        return search_models(self.http, query, limit)

    def file_url(self, repo_id: str, filename: str, revision_or_commit: str) -> str:
        from termllm.hub import hf

        return hf.hf_hub_url(repo_id, filename, revision=revision_or_commit, endpoint=self.endpoint)

    def open_remote(self, repo_id: str, filename: str, revision: str | None) -> HttpRangeSource:
        """Random access to a file on the Hub by range requests, for reading a GGUF header."""
        target = Target(self.endpoint, repo_id, revision, filename)
        check_repo_path(filename)
        if self.offline:
            raise offline_error(target)
        self.check_repo_id(repo_id)
        url = self.file_url(repo_id, filename, revision or "main")
        probe = self.http.probe(url, target)
        return HttpRangeSource(self.http, probe.data_url, probe.size, url, target)
