"""download(): the standard cache layout, no repeated work, verification, refusals, disk errors."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import huggingface_hub
import pytest
from fakehub import TOKEN, FakeHub, RecordingProgress

from termllm.errors import HubError, IntegrityError, NetworkError, RefusedError, StorageError
from termllm.hub.client import HubClient
from termllm.hub.download import download
from termllm.hub.listing import RemoteFile, RepoListing

MODEL = os.urandom(3 * 1024 * 1024 + 123)
README = b"# a model card\n"
REPO = "owner/model"
REPO_FOLDER = "models--owner--model"


def _pull(
    client: HubClient,
    progress: RecordingProgress,
    revision: str | None = None,
    only: Callable[[RemoteFile], bool] = lambda item: True,
) -> list[Path]:
    listing = client.list_files(REPO, revision)
    return download(client, listing, [f for f in listing.files if only(f)], revision, progress)


def test_files_land_in_the_standard_cache_layout(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path, progress: RecordingProgress
) -> None:
    commit = fake_hub.add_repo(REPO, {"m-Q4_K_M.gguf": MODEL, "README.md": README})

    paths = _pull(hub_client, progress)

    snapshot = hub_cache / REPO_FOLDER / "snapshots" / commit
    assert paths == [snapshot / "m-Q4_K_M.gguf", snapshot / "README.md"]
    assert paths[0].read_bytes() == MODEL
    assert str(paths[0].readlink()) == f"../../blobs/{hashlib.sha256(MODEL).hexdigest()}"
    git_id = hashlib.sha1(f"blob {len(README)}\0".encode() + README).hexdigest()
    assert str(paths[1].readlink()) == f"../../blobs/{git_id}"
    assert (hub_cache / REPO_FOLDER / "refs" / "main").read_text() == commit
    assert sorted(p.name for p in (hub_cache / REPO_FOLDER / "blobs").iterdir()) == sorted(
        [hashlib.sha256(MODEL).hexdigest(), git_id]
    )
    assert progress.begins == [
        ("begin", "m-Q4_K_M.gguf", len(MODEL), 0),
        ("begin", "README.md", len(README), 0),
    ]
    assert progress.advanced == len(MODEL) + len(README)


def test_huggingface_hub_sees_the_files_as_its_own(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path, progress: RecordingProgress
) -> None:
    commit = fake_hub.add_repo(REPO, {"m-Q4_K_M.gguf": MODEL, "README.md": README})
    paths = _pull(hub_client, progress)

    info = huggingface_hub.scan_cache_dir(hub_cache)
    assert info.warnings == []
    assert info.incomplete_files == frozenset()
    (repo,) = info.repos
    (revision,) = repo.revisions
    assert (repo.repo_id, revision.commit_hash, revision.refs) == (
        REPO,
        commit,
        frozenset({"main"}),
    )
    assert {f.file_name: f.size_on_disk for f in revision.files} == {
        "m-Q4_K_M.gguf": len(MODEL),
        "README.md": len(README),
    }
    for name, path in (("m-Q4_K_M.gguf", paths[0]), ("README.md", paths[1])):
        found = huggingface_hub.hf_hub_download(
            REPO, name, cache_dir=hub_cache, endpoint=fake_hub.url, local_files_only=True
        )
        assert Path(found) == path


def test_a_second_pull_sends_no_request_for_the_files(
    fake_hub: FakeHub, hub_client: HubClient, progress: RecordingProgress
) -> None:
    fake_hub.add_repo(REPO, {"m-Q4_K_M.gguf": MODEL, "README.md": README})
    first = _pull(hub_client, progress)
    fake_hub.clear_log()
    again = RecordingProgress()

    assert _pull(hub_client, again) == first
    assert [r.path for r in fake_hub.log()] == [f"/api/models/{REPO}"]
    assert again.events == []


def test_nested_paths_link_with_the_right_depth(
    fake_hub: FakeHub, hub_client: HubClient, progress: RecordingProgress
) -> None:
    fake_hub.add_repo(REPO, {"q4/part/m-Q4_K_M.gguf": MODEL, "docs/README.md": README})

    model, readme = _pull(hub_client, progress)

    assert str(model.readlink()).startswith("../../../../blobs/")
    assert str(readme.readlink()).startswith("../../../blobs/")
    assert model.read_bytes() == MODEL
    assert readme.read_bytes() == README


def test_a_blob_shared_by_two_revisions_is_fetched_once(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path, progress: RecordingProgress
) -> None:
    main = fake_hub.add_repo(REPO, {"m-Q4_K_M.gguf": MODEL})
    v2 = fake_hub.add_repo(REPO, {"m-Q4_K_M.gguf": MODEL, "README.md": README}, revision="v2")
    (first,) = _pull(hub_client, progress)
    fake_hub.clear_log()

    second = _pull(hub_client, progress, "v2", only=lambda f: f.path.endswith(".gguf"))

    assert second == [hub_cache / REPO_FOLDER / "snapshots" / v2 / "m-Q4_K_M.gguf"]
    assert first.resolve() == second[0].resolve()
    assert fake_hub.file_gets() == []
    refs = hub_cache / REPO_FOLDER / "refs"
    assert (refs / "main").read_text() == main
    assert (refs / "v2").read_text() == v2


def test_a_commit_revision_writes_no_ref(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path, progress: RecordingProgress
) -> None:
    commit = fake_hub.add_repo(REPO, {"m-Q4_K_M.gguf": MODEL})

    _pull(hub_client, progress, commit)

    assert not (hub_cache / REPO_FOLDER / "refs").exists()


def test_corrupt_bytes_are_rejected_and_removed(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path, progress: RecordingProgress
) -> None:
    fake_hub.add_repo(REPO, {"m-Q4_K_M.gguf": MODEL})
    fake_hub.corrupt = True

    with pytest.raises(IntegrityError) as caught:
        _pull(hub_client, progress)

    sha = hashlib.sha256(MODEL).hexdigest()
    assert str(caught.value).startswith(f"m-Q4_K_M.gguf: sha256 mismatch (expected {sha}, got ")
    assert str(caught.value).endswith("; the partial download was removed, run pull again")
    assert list((hub_cache / REPO_FOLDER / "blobs").iterdir()) == []
    snapshots = hub_cache / REPO_FOLDER / "snapshots"
    assert [path for path in snapshots.rglob("*") if not path.is_dir()] == []


def test_corrupt_git_file_is_rejected(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path, progress: RecordingProgress
) -> None:
    fake_hub.add_repo(REPO, {"README.md": README})
    fake_hub.corrupt = True

    with pytest.raises(IntegrityError, match=r"README\.md: git blob id mismatch"):
        _pull(hub_client, progress)
    assert list((hub_cache / REPO_FOLDER / "blobs").iterdir()) == []


def test_wrong_size_is_an_integrity_error(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path, progress: RecordingProgress
) -> None:
    commit = fake_hub.add_repo(REPO, {"m-Q4_K_M.gguf": MODEL})
    sha = hashlib.sha256(MODEL).hexdigest()
    listing = RepoListing(REPO, commit, (RemoteFile("m-Q4_K_M.gguf", len(MODEL) - 1, sha),))

    with pytest.raises(IntegrityError, match="where the Hub announced"):
        download(hub_client, listing, listing.files, None, progress)
    assert list((hub_cache / REPO_FOLDER / "blobs").iterdir()) == []


@pytest.mark.parametrize(
    "name",
    ["../x.gguf", "/abs.gguf", "a/../../b.gguf", "a\\..\\b.gguf", "a//b.gguf", "./a.gguf", ""],
)
def test_paths_that_escape_the_cache_are_refused_before_any_write(
    fake_hub: FakeHub, hub_client: HubClient, tmp_path: Path, name: str
) -> None:
    commit = fake_hub.add_repo(REPO, {"good.gguf": MODEL})
    good = hub_client.list_files(REPO, None).files[0]
    bad = RemoteFile(name, 10, hashlib.sha256(b"x").hexdigest())
    listing = RepoListing(REPO, commit, (good, bad))
    fake_hub.clear_log()
    before = sorted(tmp_path.rglob("*"))

    with pytest.raises(RefusedError, match="would escape the model cache"):
        download(hub_client, listing, listing.files, None, RecordingProgress())

    assert sorted(tmp_path.rglob("*")) == before
    assert fake_hub.log() == []


def test_a_revision_that_escapes_the_cache_is_refused(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path
) -> None:
    fake_hub.add_repo(REPO, {"good.gguf": MODEL})
    listing = hub_client.list_files(REPO, None)

    with pytest.raises(RefusedError):
        download(hub_client, listing, listing.files, "../../evil", RecordingProgress())
    assert not hub_cache.exists()


def test_a_hash_that_is_not_hex_is_refused(hub_client: HubClient, hub_cache: Path) -> None:
    listing = RepoListing(REPO, "a" * 40, (RemoteFile("m.gguf", 1, "../../../etc/passwd"),))
    with pytest.raises(HubError, match="invalid hash"):
        download(hub_client, listing, listing.files, None, RecordingProgress())
    assert not hub_cache.exists()


def test_gated_repo_needs_a_token_and_the_cdn_never_sees_it(
    fake_hub: FakeHub, make_client: Callable[..., HubClient], progress: RecordingProgress
) -> None:
    fake_hub.add_repo(REPO, {"m-Q4_K_M.gguf": MODEL}, gated=True)

    with pytest.raises(HubError, match="'owner/model' is gated: accept its terms"):
        _pull(make_client(), progress)
    (path,) = _pull(make_client(token=TOKEN), progress)

    assert path.read_bytes() == MODEL
    assert all(r.authorization is None for r in fake_hub.log("cdn"))
    assert fake_hub.log("hub", "GET")[-1].authorization == f"Bearer {TOKEN}"


def test_offline_pull_of_present_files_needs_no_network(
    fake_hub: FakeHub,
    hub_client: HubClient,
    make_client: Callable[..., HubClient],
    progress: RecordingProgress,
) -> None:
    fake_hub.add_repo(REPO, {"m-Q4_K_M.gguf": MODEL, "README.md": README})
    listing = hub_client.list_files(REPO, None)
    (gguf,) = download(hub_client, listing, listing.files[:1], None, progress)
    fake_hub.clear_log()
    offline = make_client(offline=True)

    assert download(offline, listing, listing.files[:1], None, progress) == [gguf]
    with pytest.raises(NetworkError, match="offline mode"):
        download(offline, listing, listing.files, None, progress)
    assert fake_hub.log() == []


def test_two_pulls_of_one_file_at_once_fetch_it_once(
    fake_hub: FakeHub, make_client: Callable[..., HubClient]
) -> None:
    fake_hub.add_repo(REPO, {"m-Q4_K_M.gguf": MODEL})
    fake_hub.delay_per_chunk = 0.002
    results: list[object] = []

    def pull() -> None:
        try:
            results.append(_pull(make_client(), RecordingProgress()))
        except Exception as err:  # surfaced through `results`
            results.append(err)

    threads = [threading.Thread(target=pull) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == 2 and results[0] == results[1]
    assert len(fake_hub.log("cdn", "GET")) == 1


def test_disk_full_is_a_storage_error_and_keeps_the_partial(
    fake_hub: FakeHub, hub_client: HubClient, hub_cache: Path, progress: RecordingProgress
) -> None:
    fake_hub.add_repo(REPO, {"m-Q4_K_M.gguf": MODEL})
    blobs = hub_cache / REPO_FOLDER / "blobs"
    blobs.mkdir(parents=True)
    # /dev/full answers every write with ENOSPC, exactly like a full disk.
    partial = blobs / f"{hashlib.sha256(MODEL).hexdigest()}.incomplete"
    partial.symlink_to("/dev/full")

    with pytest.raises(StorageError) as caught:
        _pull(hub_client, progress)

    assert str(caught.value) == f"cannot write {partial}: No space left on device"
    assert partial.is_symlink()


def test_a_cache_folder_that_cannot_be_created_is_a_storage_error(
    fake_hub: FakeHub, make_client: Callable[..., HubClient], tmp_path: Path
) -> None:
    fake_hub.add_repo(REPO, {"m-Q4_K_M.gguf": MODEL})
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    client = make_client(cache_dir=not_a_folder / "cache")

    with pytest.raises(StorageError, match=r"cannot write .*: Not a directory"):
        _pull(client, RecordingProgress())
