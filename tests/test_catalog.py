from pathlib import Path

import pytest
from cache_builder import add_cached_repo
from huggingface_hub import scan_cache_dir

from termllm.config import load_config
from termllm.domain import HubRef, ModelSource, NameRef, PathRef
from termllm.errors import ModelRefError, StorageError
from termllm.hub.cache import delete_model, scan_models
from termllm.services.catalog import find_local, list_local_models
from termllm.state import AppState


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return load_config().paths.hub_cache


def test_lists_hub_models_packaged_starter_and_local_files(
    cache: Path, starter_model: Path, tmp_path: Path
) -> None:
    add_cached_repo(cache, "org/Tiny-GGUF", {"tiny-Q4_K_M.gguf": b"q4", "tiny-Q8_0.gguf": b"q8"})
    own = tmp_path / "mine.Q5_K_M.gguf"
    own.write_bytes(b"x" * 10)
    state = AppState(local_models=[str(own), str(tmp_path / "gone.gguf")])
    models = list_local_models(cache, state)
    by_ref = {model.ref: model for model in models}
    assert by_ref["org/Tiny-GGUF:Q4_K_M"].source is ModelSource.HUB
    assert by_ref["org/Tiny-GGUF:Q8_0"].size_bytes == 2
    starter = by_ref["SmolLM2-135M-Instruct.Q4_1"]
    assert (starter.source, starter.quant, starter.path) == (
        ModelSource.PACKAGE,
        "Q4_1",
        starter_model,
    )
    assert by_ref["mine.Q5_K_M"].source is ModelSource.LOCAL
    assert all("gone" not in model.ref for model in models)


def test_split_models_are_one_entry_and_incomplete_splits_are_skipped(cache: Path) -> None:
    parts = {f"Big-Q4_K_M-0000{i}-of-00003.gguf": bytes(i) for i in (1, 2, 3)}
    add_cached_repo(cache, "org/big", parts)
    add_cached_repo(cache, "org/half", {"H-Q8_0-00001-of-00002.gguf": b"1"})
    models = list_local_models(cache, AppState())
    hub = [model for model in models if model.source is ModelSource.HUB]
    assert [(model.ref, len(model.paths), model.size_bytes) for model in hub] == [
        ("org/big:Q4_K_M", 3, 6)
    ]
    assert hub[0].path.name.endswith("00001-of-00003.gguf")


def test_references_find_local_models(cache: Path, starter_model: Path) -> None:
    add_cached_repo(cache, "org/Tiny-GGUF", {"tiny-Q4_K_M.gguf": b"q4", "tiny-Q8_0.gguf": b"q8"})
    models = list_local_models(cache, AppState())
    found = find_local(HubRef("org/Tiny-GGUF", quant="Q8_0"), models)
    assert found is not None and found.quant == "Q8_0"
    found = find_local(HubRef("org/Tiny-GGUF", filename="tiny-Q4_K_M.gguf"), models)
    assert found is not None and found.quant == "Q4_K_M"
    assert find_local(NameRef("smollm2-135m-instruct"), models) is not None
    assert find_local(PathRef(starter_model), models) is not None
    assert find_local(HubRef("org/other", quant="Q8_0"), models) is None
    with pytest.raises(ModelRefError, match="several local models"):
        find_local(NameRef("tiny-gguf"), models)


def test_several_snapshots_are_told_apart_by_revision(cache: Path) -> None:
    add_cached_repo(cache, "org/m", {"m-Q4_0.gguf": b"old"}, commit="1" * 40, ref="v1")
    add_cached_repo(cache, "org/m", {"m-Q4_0.gguf": b"new!"}, commit="2" * 40, ref="main")
    models = list_local_models(cache, AppState())
    assert sorted(model.ref for model in models if model.repo_id) == ["org/m:Q4_0", "org/m@v1:Q4_0"]
    current = find_local(HubRef("org/m", quant="Q4_0"), models)
    assert current is not None and current.size_bytes == 4
    old = find_local(HubRef("org/m", revision="v1", quant="Q4_0"), models)
    assert old is not None and old.size_bytes == 3


def test_delete_keeps_shared_blobs_and_removes_a_bare_repo(cache: Path) -> None:
    add_cached_repo(cache, "org/m", {"m-Q4_0.gguf": b"same", "m-Q8_0.gguf": b"q8"}, commit="1" * 40)
    add_cached_repo(cache, "org/m", {"m-Q4_0.gguf": b"same"}, commit="2" * 40, ref="v2")
    by_commit = {(m.commit, m.repo_paths[0]): m for m in scan_models(cache)}
    assert delete_model(cache, by_commit[("1" * 40, "m-Q4_0.gguf")]) == 0  # still linked by v2
    assert delete_model(cache, by_commit[("1" * 40, "m-Q8_0.gguf")]) == 2
    assert {m.commit for m in scan_models(cache)} == {"2" * 40}
    assert scan_cache_dir(cache).repos  # huggingface_hub still reads what is left
    assert delete_model(cache, scan_models(cache)[0]) == 4
    assert not (cache / "models--org--m").exists()


def test_layout_matches_what_huggingface_hub_reads(cache: Path) -> None:
    add_cached_repo(cache, "org/m", {"sub/m-Q4_0.gguf": b"1234", "README.md": b"hi"})
    info = scan_cache_dir(cache)
    files = {file.file_name for repo in info.repos for rev in repo.revisions for file in rev.files}
    assert files == {"m-Q4_0.gguf", "README.md"}
    assert [m.repo_paths for m in scan_models(cache)] == [("sub/m-Q4_0.gguf",)]


def test_an_unreadable_cache_is_a_clear_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("oops")
    with pytest.raises(StorageError, match="cannot read the model cache"):
        scan_models(not_a_folder)
