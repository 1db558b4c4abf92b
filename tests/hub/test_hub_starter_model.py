"""End to end with the real starter model (98 MB) served by the fake Hub over loopback."""

from __future__ import annotations

import hashlib
from pathlib import Path

import huggingface_hub
from fakehub import FakeHub, RecordingProgress

from termllm.gguf.reader import read_header
from termllm.gguf.source import FileSource
from termllm.hub.client import HubClient
from termllm.hub.download import download

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_pull_the_starter_model_through_a_dropped_connection(
    fake_hub: FakeHub,
    hub_client: HubClient,
    hub_cache: Path,
    starter_model: Path,
    progress: RecordingProgress,
) -> None:
    fake_hub.add_repo(REPO, {NAME: starter_model, "README.md": b"# SmolLM2\n"})
    fake_hub.drop_after_bytes, fake_hub.drop_count = 40_000_000, 1
    listing = hub_client.list_files(REPO, None)
    gguf = [item for item in listing.files if item.path == NAME]

    (path,) = download(hub_client, listing, gguf, None, progress)

    assert path.stat().st_size == starter_model.stat().st_size
    assert _sha256(path) == gguf[0].sha256 == _sha256(starter_model)
    # Every byte that arrived before the drop reached the partial file.
    assert [r.range for r in fake_hub.log("cdn", "GET")] == [None, "bytes=40000000-"]
    assert progress.advanced == starter_model.stat().st_size
    (repo,) = huggingface_hub.scan_cache_dir(hub_cache).repos
    assert repo.repo_id == REPO and repo.size_on_disk == starter_model.stat().st_size


def test_read_the_starter_model_header_remotely(
    fake_hub: FakeHub, hub_client: HubClient, starter_model: Path
) -> None:
    fake_hub.add_repo(REPO, {NAME: starter_model})

    remote = read_header(hub_client.open_remote(REPO, NAME, None))

    assert remote == read_header(FileSource(starter_model))
    # A few MiB of header out of 98 MB, in a handful of requests.
    assert len(fake_hub.log("cdn", "GET")) <= 5


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
