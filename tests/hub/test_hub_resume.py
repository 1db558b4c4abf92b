"""Interrupted pulls keep their bytes and the next pull continues with a Range request."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import huggingface_hub
import pytest
from fakehub import FakeHub, RecordingProgress

from termllm.errors import NetworkError
from termllm.hub.client import HubClient
from termllm.hub.download import download
from termllm.hub.transfer import CHUNK_BYTES

MODEL = os.urandom(4 * 1024 * 1024 + 77)
REPO = "owner/model"
NAME = "m-Q4_K_M.gguf"


def _partial(hub_cache: Path) -> Path:
    return hub_cache / "models--owner--model" / "blobs" / f"{_sha()}.incomplete"


def _sha() -> str:
    return hashlib.sha256(MODEL).hexdigest()


def _pull(client: HubClient, progress: RecordingProgress) -> list[Path]:
    listing = client.list_files(REPO, None)
    return download(client, listing, listing.files, None, progress)


def _ranges(hub: FakeHub) -> list[str | None]:
    return [r.range for r in hub.log("cdn", "GET")]


def test_a_dropped_connection_is_resumed_within_the_same_call(
    fake_hub: FakeHub, hub_client: HubClient, progress: RecordingProgress
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    fake_hub.drop_after_bytes, fake_hub.drop_count = 1_500_000, 1

    (path,) = _pull(hub_client, progress)

    assert path.read_bytes() == MODEL
    # Bytes are written as they arrive: the partial held all of them when the link dropped.
    assert _ranges(fake_hub) == [None, "bytes=1500000-"]


def test_a_connection_that_keeps_dropping_fails_and_the_next_pull_resumes(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path, progress: RecordingProgress
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    fake_hub.drop_after_bytes = 2 * CHUNK_BYTES

    with pytest.raises(NetworkError) as caught:
        _pull(hub_client, progress)

    assert str(caught.value).startswith(
        f"lost the connection to the download server {fake_hub.cdn_url}: peer closed connection"
    )
    assert str(caught.value).endswith(
        f"; {NAME} is kept partly downloaded ({2 * CHUNK_BYTES} of {len(MODEL)} bytes),"
        " run pull again to resume"
    )
    partial = _partial(hub_cache)
    assert partial.stat().st_size == 2 * CHUNK_BYTES
    assert partial.read_bytes() == MODEL[: 2 * CHUNK_BYTES]
    assert len(fake_hub.log("cdn", "GET")) == 3  # the first try and two retries
    fake_hub.drop_after_bytes = None
    fake_hub.clear_log()
    again = RecordingProgress()

    (path,) = _pull(hub_client, again)

    assert path.read_bytes() == MODEL
    assert _ranges(fake_hub) == [f"bytes={2 * CHUNK_BYTES}-"]
    assert again.begins == [("begin", NAME, len(MODEL), 2 * CHUNK_BYTES)]
    assert again.advanced == len(MODEL) - 2 * CHUNK_BYTES
    assert not partial.exists()


def test_ctrl_c_keeps_the_partial_and_a_later_pull_resumes(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path, progress: RecordingProgress
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    progress.interrupt_after = 1

    with pytest.raises(KeyboardInterrupt):
        _pull(hub_client, progress)

    # The first piece that arrived was written before the interruption came.
    kept = _partial(hub_cache).stat().st_size
    assert 0 < kept < len(MODEL)
    # huggingface_hub sees an incomplete download, not a corrupted repo, and no file yet.
    scanned = huggingface_hub.scan_cache_dir(hub_cache)
    assert scanned.warnings == []
    assert [f.file_path for f in scanned.incomplete_files] == [_partial(hub_cache)]
    assert [len(revision.files) for revision in next(iter(scanned.repos)).revisions] == [0]
    fake_hub.clear_log()

    (path,) = _pull(hub_client, RecordingProgress())

    assert path.read_bytes() == MODEL
    assert _ranges(fake_hub) == [f"bytes={kept}-"]


def test_a_killed_process_leaves_a_partial_that_the_next_pull_resumes(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path, tmp_path: Path
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    fake_hub.delay_per_chunk = 0.02  # 64 KiB per 20 ms: ~1.3 s for the whole file
    script = (
        "import sys; from pathlib import Path\n"
        "from termllm.hub.client import HubClient\n"
        "from termllm.hub.download import download\n"
        "class Quiet:\n"
        "    def begin(self, *args): pass\n"
        "    def advance(self, n): pass\n"
        "    def end(self): pass\n"
        "client = HubClient(sys.argv[1], Path(sys.argv[2]), None, False, 10.0)\n"
        "listing = client.list_files('owner/model', None)\n"
        "download(client, listing, listing.files, None, Quiet())\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, fake_hub.url, str(hub_cache)])
    partial = _partial(hub_cache)
    try:
        deadline = time.monotonic() + 30
        while not (partial.exists() and partial.stat().st_size >= CHUNK_BYTES):
            assert time.monotonic() < deadline, "the child never wrote its first MiB"
            assert child.poll() is None, "the child ended before it could be killed"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    kept = partial.stat().st_size
    assert 0 < kept < len(MODEL)
    assert partial.read_bytes() == MODEL[:kept]
    fake_hub.delay_per_chunk = 0
    fake_hub.clear_log()

    (path,) = _pull(hub_client, RecordingProgress())

    assert path.read_bytes() == MODEL
    assert _ranges(fake_hub) == [f"bytes={kept}-"]


def test_a_server_that_ignores_range_restarts_the_file_cleanly(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    partial = _partial(hub_cache)
    partial.parent.mkdir(parents=True)
    partial.write_bytes(MODEL[:1000])
    fake_hub.ignore_range = True
    progress = RecordingProgress()

    (path,) = _pull(hub_client, progress)

    assert path.read_bytes() == MODEL
    assert _ranges(fake_hub) == ["bytes=1000-"]
    assert progress.begins == [
        ("begin", NAME, len(MODEL), 1000),
        ("begin", NAME, len(MODEL), 0),
    ]


def test_a_partial_with_wrong_bytes_fails_verification_and_is_removed(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    partial = _partial(hub_cache)
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\0" * 1000)

    with pytest.raises(Exception, match="sha256 mismatch"):
        _pull(hub_client, RecordingProgress())
    assert not partial.exists()

    (path,) = _pull(hub_client, RecordingProgress())
    assert path.read_bytes() == MODEL


def test_a_complete_partial_is_verified_and_published_without_a_request(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    partial = _partial(hub_cache)
    partial.parent.mkdir(parents=True)
    partial.write_bytes(MODEL)

    (path,) = _pull(hub_client, RecordingProgress())

    assert path.read_bytes() == MODEL
    assert fake_hub.file_gets() == []


def test_a_partial_longer_than_the_file_starts_over(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    partial = _partial(hub_cache)
    partial.parent.mkdir(parents=True)
    partial.write_bytes(MODEL + b"extra")

    (path,) = _pull(hub_client, RecordingProgress())

    assert path.read_bytes() == MODEL
    assert _ranges(fake_hub) == [None]
