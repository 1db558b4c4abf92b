"""HubClient.list_files against the fake Hub: normal, missing, gated, private, failing, offline."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fakehub import TOKEN, FakeHub

from termllm.errors import HubError, ModelNotFoundError, ModelRefError, NetworkError
from termllm.hub.client import HubClient
from termllm.hub.listing import RemoteFile

GGUF = b"GGUF" + bytes(range(256)) * 40
README = b"# a model\n"


def test_lists_files_with_sizes_hashes_and_commit(fake_hub: FakeHub, hub_client: HubClient) -> None:
    commit = fake_hub.add_repo("owner/model", {"m-Q4_K_M.gguf": GGUF, "README.md": README})

    listing = hub_client.list_files("owner/model", None)

    assert listing.repo_id == "owner/model"
    assert listing.commit == commit
    by_path = {item.path: item for item in listing.files}
    assert by_path["README.md"] == RemoteFile("README.md", len(README), None)
    gguf = by_path["m-Q4_K_M.gguf"]
    assert gguf.size == len(GGUF)
    assert gguf.sha256 is not None and len(gguf.sha256) == 64
    # One request, asking for file metadata; no telemetry.
    assert [(r.method, r.path, r.query) for r in fake_hub.log()] == [
        ("GET", "/api/models/owner/model", "blobs=true")
    ]


def test_lists_a_named_revision(fake_hub: FakeHub, hub_client: HubClient) -> None:
    fake_hub.add_repo("owner/model", {"a.gguf": GGUF})
    v2 = fake_hub.add_repo("owner/model", {"b.gguf": GGUF}, revision="v2")

    listing = hub_client.list_files("owner/model", "v2")

    assert listing.commit == v2
    assert [item.path for item in listing.files] == ["b.gguf"]
    assert fake_hub.log()[0].path == "/api/models/owner/model/revision/v2"


def test_unknown_repo_is_model_not_found(fake_hub: FakeHub, hub_client: HubClient) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        hub_client.list_files("owner/missing", None)
    assert str(caught.value) == (
        f"repository 'owner/missing' not found on {fake_hub.url}"
        " (check the name, or set HF_TOKEN for a private repo)"
    )


def test_unknown_revision_is_model_not_found(fake_hub: FakeHub, hub_client: HubClient) -> None:
    fake_hub.add_repo("owner/model", {"a.gguf": GGUF})
    with pytest.raises(ModelNotFoundError, match="revision 'nope' not found in 'owner/model'"):
        hub_client.list_files("owner/model", "nope")


def test_invalid_repo_name_is_refused_without_a_request(
    fake_hub: FakeHub, hub_client: HubClient
) -> None:
    with pytest.raises(ModelRefError, match="not a valid repository name"):
        hub_client.list_files("a/b/c", None)
    assert fake_hub.log() == []


def test_gated_repo_lists_like_the_real_hub(
    fake_hub: FakeHub, make_client: Callable[..., HubClient]
) -> None:
    # The Hub shows a gated repo's files to anyone; only reading a file needs accepted terms.
    fake_hub.add_repo("owner/gated", {"a.gguf": GGUF}, gated=True)

    anonymous = make_client().list_files("owner/gated", None)
    with_token = make_client(token=TOKEN).list_files("owner/gated", None)

    assert anonymous == with_token
    assert fake_hub.log()[0].authorization is None
    assert fake_hub.log()[1].authorization == f"Bearer {TOKEN}"


def test_private_repo_needs_the_token(
    fake_hub: FakeHub, make_client: Callable[..., HubClient]
) -> None:
    fake_hub.add_repo("owner/private", {"a.gguf": GGUF}, private=True)

    with pytest.raises(ModelNotFoundError, match="set HF_TOKEN for a private repo"):
        make_client().list_files("owner/private", None)
    assert make_client(token=TOKEN).list_files("owner/private", None).files


def test_token_from_the_environment_is_used(
    fake_hub: FakeHub, hub_client: HubClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.add_repo("owner/private", {"a.gguf": GGUF}, private=True)
    monkeypatch.setenv("HF_TOKEN", TOKEN)

    assert hub_client.list_files("owner/private", None).files


def test_server_error_is_a_hub_error_with_the_status(
    fake_hub: FakeHub, hub_client: HubClient
) -> None:
    fake_hub.fail_with = 503
    with pytest.raises(HubError, match="answered HTTP 503"):
        hub_client.list_files("owner/model", None)


def test_offline_fails_without_any_request(
    fake_hub: FakeHub, make_client: Callable[..., HubClient]
) -> None:
    fake_hub.add_repo("owner/model", {"a.gguf": GGUF})
    with pytest.raises(NetworkError, match=r"offline mode \(HF_HUB_OFFLINE\) is on"):
        make_client(offline=True).list_files("owner/model", None)
    assert fake_hub.log() == []


def test_unreachable_hub_fails_fast(make_client: Callable[..., HubClient]) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()

    with pytest.raises(NetworkError) as caught:
        make_client(endpoint=endpoint).list_files("owner/model", None)

    assert time.monotonic() - started < 5
    assert str(caught.value) == f"cannot reach the Hub at {endpoint}: connection refused"


def test_silent_hub_times_out(make_client: Callable[..., HubClient]) -> None:
    with _silent_server() as port:
        client = make_client(endpoint=f"http://127.0.0.1:{port}", timeout_s=0.5)
        started = time.monotonic()
        with pytest.raises(NetworkError, match=r"no answer within 0\.5 s"):
            client.list_files("owner/model", None)
    assert time.monotonic() - started < 5


def test_hub_that_is_not_a_hub(make_client: Callable[..., HubClient], fake_hub: FakeHub) -> None:
    # The fake CDN answers 404 JSON to API paths: a wrong endpoint gives a clear error.
    with pytest.raises(HubError, match="answered HTTP 404"):
        make_client(endpoint=fake_hub.cdn_url).list_files("owner/model", None)


def test_no_telemetry_request_even_when_the_environment_does_not_forbid_it(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    """huggingface_hub asks {HF_ENDPOINT}/api/agent-harnesses unless telemetry is off."""
    fake_hub.add_repo("owner/model", {"a.gguf": GGUF})
    script = (
        "import sys; from pathlib import Path; from termllm.hub.client import HubClient;"
        "HubClient(sys.argv[1], Path(sys.argv[2]), None, False, 5.0)"
        ".list_files('owner/model', None)"
    )
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_TELEMETRY"}
    env |= {"HF_ENDPOINT": fake_hub.url, "HF_HOME": str(tmp_path / "hf-home")}
    args = [sys.executable, "-c", script, fake_hub.url, str(tmp_path / "cache")]

    subprocess.run(args, env=env, check=True, timeout=60)
    assert [r.path for r in fake_hub.log()] == ["/api/models/owner/model"]

    # The same run with telemetry explicitly on does make the request: the check above is real.
    fake_hub.clear_log()
    subprocess.run(args, env=env | {"HF_HUB_DISABLE_TELEMETRY": "0"}, check=True, timeout=60)
    assert "/api/agent-harnesses" in [r.path for r in fake_hub.log()]


def test_repr_never_shows_the_token(make_client: Callable[..., HubClient]) -> None:
    assert TOKEN not in repr(make_client(token=TOKEN))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def _silent_server() -> Iterator[int]:
    """A socket that accepts connections (through its backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]
