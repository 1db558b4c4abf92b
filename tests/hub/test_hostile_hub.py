"""A hostile Hub through the real HubClient: trickles, unsafe names, malformed or huge listings,
compressed answers, and a remote header that never ends."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakehub import FakeHub, RecordingProgress

from termllm.errors import GGUFError, HubError, NetworkError
from termllm.gguf.cursor import MAX_HEADER_BYTES
from termllm.hub import repo_info
from termllm.hub.client import HubClient
from termllm.hub.download import download

REPO = "owner/model"
NAME = "m-Q4_K_M.gguf"
MODEL = os.urandom(200_000)
TRICKLE_AT = 100_000

# Trickle tests end in ~1-2 s with the fix; without it they would wait for the trickle to end.
pytestmark = pytest.mark.timeout(60)


def _pull(client: HubClient, progress: RecordingProgress) -> list[Path]:
    listing = client.list_files(REPO, None)
    return download(client, listing, listing.files, None, progress)


def test_a_trickling_download_stalls_fast_and_the_next_pull_resumes(
    fake_hub: FakeHub, make_client: Callable[..., HubClient], progress: RecordingProgress
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    fake_hub.trickle_from = TRICKLE_AT
    client = make_client(timeout_s=1.0)

    started = time.monotonic()
    with pytest.raises(NetworkError) as caught:
        _pull(client, progress)

    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert message.startswith(
        f"lost the connection to the download server {fake_hub.cdn_url}:"
        " less than 16 KiB arrived in 1 s (hub.timeout_s)"
    )
    assert message.endswith("run pull again to resume") and "\n" not in message
    assert len(fake_hub.log("cdn", "GET")) == 1  # a stall is not retried: it would stall again

    fake_hub.trickle_from = None
    fake_hub.clear_log()
    (path,) = _pull(client, RecordingProgress())

    assert path.read_bytes() == MODEL
    [resumed] = fake_hub.log("cdn", "GET")
    assert resumed.range is not None
    assert int(resumed.range.removeprefix("bytes=").rstrip("-")) >= TRICKLE_AT


def test_a_trickling_listing_stalls_fast(
    fake_hub: FakeHub, make_client: Callable[..., HubClient]
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    fake_hub.trickle_listings = True

    started = time.monotonic()
    with pytest.raises(NetworkError) as caught:
        make_client(timeout_s=1.0).list_files(REPO, None)

    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        f"lost the connection to the Hub at {fake_hub.url}:"
        " less than 16 KiB arrived in 1 s (hub.timeout_s)"
    )


def test_a_trickling_header_read_stalls_fast(
    fake_hub: FakeHub, make_client: Callable[..., HubClient]
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    fake_hub.trickle_from = 0
    source = make_client(timeout_s=1.0).open_remote(REPO, NAME, None)

    started = time.monotonic()
    with pytest.raises(NetworkError, match="less than 16 KiB arrived in 1 s"):
        source.read_at(0, 4096)
    assert time.monotonic() - started < 5


def test_a_slow_but_steady_server_is_not_a_stall(
    fake_hub: FakeHub, make_client: Callable[..., HubClient], progress: RecordingProgress
) -> None:
    # 64 KiB every 0.3 s with a 0.5 s timeout: each read is slow, yet the transfer progresses.
    fake_hub.add_repo(REPO, {NAME: MODEL})
    fake_hub.delay_per_chunk = 0.3

    (path,) = _pull(make_client(timeout_s=0.5), progress)

    assert path.read_bytes() == MODEL


@pytest.mark.parametrize(
    "name",
    [
        "evil\n.gguf",
        "clear\x1b[2J\x1b]0;pwned\x07-Q8_0.gguf",
        "nul\x00.gguf",
        "tab\there.gguf",
        "bidi\u202egguf.Q8_0.gguf",
        "line\u2028break.gguf",
        "surrogate\ud800.gguf",
        "../escape.gguf",
        "/absolute.gguf",
        "twice//slash.gguf",
        "back\\slash.gguf",
        "dot/./m.gguf",
        "x" * 251 + ".gguf",
        "/".join(["deep"] * 250) + "/m.gguf",
    ],
)
def test_unsafe_file_names_are_left_out_of_the_listing(
    fake_hub: FakeHub, hub_client: HubClient, name: str
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL, name: b"GGUF"})

    listing = hub_client.list_files(REPO, None)

    assert [item.path for item in listing.files] == [NAME]
    [refused] = listing.refused
    assert refused.isprintable() and len(refused) <= 80


def test_plain_unicode_names_are_kept(fake_hub: FakeHub, hub_client: HubClient) -> None:
    names = ["Modèle-Q4_K_M.gguf", "日本語/モデル-Q8_0.gguf", "x" * 250 + ".gguf"]
    fake_hub.add_repo(REPO, dict.fromkeys(names, b"GGUF"))

    listing = hub_client.list_files(REPO, None)

    assert sorted(item.path for item in listing.files) == sorted(names)
    assert listing.refused == ()


def _siblings(*entries: object) -> Callable[[dict[str, Any]], object]:
    return lambda body: {**body, "siblings": list(entries)}


@pytest.mark.parametrize(
    "edit",
    [
        _siblings({"rfilename": 5, "size": 1}),
        _siblings({"size": 1}),
        _siblings("m.gguf"),
        _siblings(None),
        _siblings({"rfilename": "m.gguf", "size": "12"}),
        _siblings({"rfilename": "m.gguf", "size": -1}),
        _siblings({"rfilename": "m.gguf", "size": True}),
        _siblings({"rfilename": "m.gguf", "size": 1.5}),
        _siblings({"rfilename": "m.gguf", "size": 1, "lfs": "yes"}),
        _siblings({"rfilename": "m.gguf", "size": 1, "lfs": {"size": 1}}),
        _siblings({"rfilename": "m.gguf", "size": 1, "lfs": {"sha256": 7}}),
        lambda body: {**body, "siblings": {"m.gguf": 1}},
        lambda body: {key: value for key, value in body.items() if key != "siblings"},
        lambda body: {**body, "sha": 5},
        lambda body: [body],
        lambda body: "a string",
        lambda body: b"<html>not json</html>",
        lambda body: b"\xff\xfe\xfd",
        lambda body: b"[" * 100_000,
    ],
)
def test_a_malformed_listing_is_not_a_hub(
    fake_hub: FakeHub, hub_client: HubClient, edit: Callable[[dict[str, Any]], object]
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    fake_hub.edit_listing = edit

    with pytest.raises(HubError) as caught:
        hub_client.list_files(REPO, None)

    message = str(caught.value)
    assert message.startswith(f"{fake_hub.url} did not answer like a Hugging Face Hub (")
    assert "\n" not in message


def test_a_missing_size_names_the_file_printably(fake_hub: FakeHub, hub_client: HubClient) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    fake_hub.edit_listing = _siblings({"rfilename": "m\x1b[31m.gguf"})

    with pytest.raises(HubError) as caught:
        hub_client.list_files(REPO, None)
    assert str(caught.value) == "the Hub did not give the size of m [31m.gguf"


def test_a_compressed_listing_is_understood(fake_hub: FakeHub, hub_client: HubClient) -> None:
    commit = fake_hub.add_repo(REPO, {NAME: MODEL})
    fake_hub.gzip_listings = True

    listing = hub_client.list_files(REPO, None)

    assert listing.commit == commit
    assert [item.path for item in listing.files] == [NAME]


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip-bomb"])
def test_a_listing_past_the_size_limit_is_refused(
    fake_hub: FakeHub,
    hub_client: HubClient,
    monkeypatch: pytest.MonkeyPatch,
    compressed: bool,
) -> None:
    monkeypatch.setattr(repo_info, "MAX_LISTING_BYTES", 1 << 20)
    fake_hub.add_repo(REPO, {NAME: MODEL})
    many = [{"rfilename": f"f{index}.txt", "size": 1} for index in range(40_000)]
    fake_hub.edit_listing = _siblings(*many)
    fake_hub.gzip_listings = compressed

    with pytest.raises(HubError, match="list of files in 'owner/model' is over 1 MiB"):
        hub_client.list_files(REPO, None)


def test_a_remote_header_is_not_read_past_the_limit(
    fake_hub: FakeHub, hub_client: HubClient, tmp_path: Path
) -> None:
    huge = tmp_path / "huge.gguf"
    with huge.open("wb") as handle:
        handle.truncate(MAX_HEADER_BYTES + (8 << 20))  # sparse: costs no disk
    fake_hub.add_repo(REPO, {NAME: huge})
    source = hub_client.open_remote(REPO, NAME, None)

    assert source.read_at(MAX_HEADER_BYTES - 4096, 4096) == bytes(4096)
    with pytest.raises(GGUFError, match="the GGUF header runs past its first 64 MiB"):
        source.read_at(MAX_HEADER_BYTES - 10, 20)
    with pytest.raises(GGUFError):
        source.read_at(MAX_HEADER_BYTES + 1, 1)

    # The growing read-ahead window stops at the limit too.
    ends = [int((r.range or "").split("-")[1]) for r in fake_hub.log("cdn", "GET")]
    assert ends and max(ends) < MAX_HEADER_BYTES


def test_trickling_headers_end_within_twice_the_timeout(
    fake_hub: FakeHub, make_client: Callable[..., HubClient]
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    fake_hub.trickle_headers = True

    started = time.monotonic()
    with pytest.raises(NetworkError) as caught:
        make_client(timeout_s=1.0).list_files(REPO, None)

    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        f"cannot reach the Hub at {fake_hub.url}: no complete answer within 2 s"
        " (twice hub.timeout_s)"
    )


@pytest.mark.parametrize("size", ["²", "9" * 5000, "-5", "12 bytes"])
def test_a_size_that_is_not_a_count_is_refused(
    fake_hub: FakeHub, hub_client: HubClient, size: str
) -> None:
    fake_hub.add_repo(REPO, {NAME: MODEL})
    fake_hub.resolve_headers = {"X-Linked-Size": size}

    with pytest.raises(HubError, match=f"the Hub did not say how large {NAME} is"):
        hub_client.open_remote(REPO, NAME, None)
