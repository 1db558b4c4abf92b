"""HubClient.open_remote: a ByteSource over range requests, through the Hub's CDN redirect."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import pytest
from fakehub import TOKEN, FakeHub

from termllm.errors import HubError, ModelNotFoundError, NetworkError, RefusedError
from termllm.hub.client import HubClient

DATA = os.urandom(5 * 1024 * 1024 + 321)
REPO = "owner/model"
NAME = "m-Q4_K_M.gguf"


def test_reads_the_right_bytes_from_the_cdn(fake_hub: FakeHub, hub_client: HubClient) -> None:
    commit = fake_hub.add_repo(REPO, {NAME: DATA})

    source = hub_client.open_remote(REPO, NAME, commit)

    assert source.size == len(DATA)
    assert source.label == f"{fake_hub.url}/{REPO}/resolve/{commit}/{NAME}"
    rng = random.Random(7)
    for _ in range(200):
        offset = rng.randrange(0, len(DATA) + 10)
        length = rng.randrange(0, 200_000)
        assert source.read_at(offset, length) == DATA[offset : offset + length]
    hub_requests = fake_hub.log("hub")
    assert [(r.method, r.path) for r in hub_requests] == [
        ("HEAD", f"/{REPO}/resolve/{commit}/{NAME}")
    ]
    assert all(r.path.startswith("/blobs/") for r in fake_hub.log("cdn"))


def test_a_growing_header_read_costs_few_requests(fake_hub: FakeHub, hub_client: HubClient) -> None:
    fake_hub.add_repo(REPO, {NAME: DATA})
    source = hub_client.open_remote(REPO, NAME, None)

    # The way a GGUF reader walks a header: small reads, moving forward, asking for more.
    offset = 0
    while offset < 4 * 1024 * 1024:
        assert source.read_at(offset, 4096) == DATA[offset : offset + 4096]
        offset += 3000

    gets = fake_hub.log("cdn", "GET")
    assert len(gets) <= 4
    # Each miss continues where the cached bytes end; nothing is fetched twice.
    starts = [int((r.range or "").removeprefix("bytes=").split("-")[0]) for r in gets]
    ends = [int((r.range or "").split("-")[1]) for r in gets]
    assert starts == [0, *(end + 1 for end in ends[:-1])]


def test_reads_past_the_end_are_short(fake_hub: FakeHub, hub_client: HubClient) -> None:
    fake_hub.add_repo(REPO, {NAME: DATA})
    source = hub_client.open_remote(REPO, NAME, None)

    assert source.read_at(len(DATA) - 5, 100) == DATA[-5:]
    assert source.read_at(len(DATA), 100) == b""


def test_small_git_files_are_read_from_the_hub_itself(
    fake_hub: FakeHub, hub_client: HubClient
) -> None:
    fake_hub.add_repo(REPO, {"config.json": b'{"a": 1}'})
    source = hub_client.open_remote(REPO, "config.json", None)

    assert source.read_at(0, 100) == b'{"a": 1}'
    assert fake_hub.log("cdn") == []


def test_a_server_that_ignores_range_still_gives_the_right_bytes(
    fake_hub: FakeHub, hub_client: HubClient
) -> None:
    fake_hub.add_repo(REPO, {NAME: DATA})
    fake_hub.ignore_range = True
    source = hub_client.open_remote(REPO, NAME, None)

    assert source.read_at(1_000_000, 10) == DATA[1_000_000:1_000_010]


def test_the_token_goes_to_the_hub_and_never_to_the_cdn(
    fake_hub: FakeHub, make_client: Callable[..., HubClient]
) -> None:
    fake_hub.add_repo(REPO, {NAME: DATA}, gated=True)
    source = make_client(token=TOKEN).open_remote(REPO, NAME, None)

    assert source.read_at(0, 10) == DATA[:10]
    assert fake_hub.log("hub")[0].authorization == f"Bearer {TOKEN}"
    assert [r.authorization for r in fake_hub.log("cdn")] == [None]


def test_gated_repo_without_token(fake_hub: FakeHub, hub_client: HubClient) -> None:
    fake_hub.add_repo(REPO, {NAME: DATA}, gated=True)
    with pytest.raises(HubError, match="'owner/model' is gated: accept its terms on the Hub"):
        hub_client.open_remote(REPO, NAME, None)


@pytest.mark.parametrize(
    ("repo", "name", "revision", "message"),
    [
        ("owner/missing", NAME, None, "repository 'owner/missing' not found"),
        (REPO, NAME, "nope", "revision 'nope' not found in 'owner/model'"),
        (REPO, "other.gguf", None, "'other.gguf' not found in 'owner/model'"),
    ],
)
def test_missing_things_are_model_not_found(
    fake_hub: FakeHub, hub_client: HubClient, repo: str, name: str, revision: str, message: str
) -> None:
    fake_hub.add_repo(REPO, {NAME: DATA})
    with pytest.raises(ModelNotFoundError, match=message):
        hub_client.open_remote(repo, name, revision)


def test_offline_reads_nothing(fake_hub: FakeHub, make_client: Callable[..., HubClient]) -> None:
    fake_hub.add_repo(REPO, {NAME: DATA})
    with pytest.raises(NetworkError, match="offline mode"):
        make_client(offline=True).open_remote(REPO, NAME, None)
    assert fake_hub.log() == []


def test_a_path_outside_the_repo_is_refused(fake_hub: FakeHub, hub_client: HubClient) -> None:
    with pytest.raises(RefusedError):
        hub_client.open_remote(REPO, "../../api/models/x", None)
    assert fake_hub.log() == []


def test_a_cdn_that_goes_away_is_a_network_error(fake_hub: FakeHub, hub_client: HubClient) -> None:
    fake_hub.add_repo(REPO, {NAME: DATA})
    source = hub_client.open_remote(REPO, NAME, None)
    fake_hub.drop_after_bytes = 0

    with pytest.raises(NetworkError, match="the download server"):
        source.read_at(0, 10)
