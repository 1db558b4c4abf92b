"""The GGUF models in the standard Hub cache, read straight from its folder layout.

The layout (models--owner--repo/{blobs,refs,snapshots}) is stable and documented; walking it
directly keeps `termllm ls` from importing huggingface_hub, which costs more than the walk.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from termllm.errors import StorageError
from termllm.model_files import is_gguf_name, split_part

REPO_PREFIX = "models--"


@dataclass(frozen=True)
class CachedModel:
    """One model file (or the parts of one split model) in one snapshot of a repo."""

    repo_id: str
    commit: str
    refs: tuple[str, ...]
    repo_paths: tuple[str, ...]
    snapshot_paths: tuple[Path, ...]
    size_bytes: int


def repo_folder(cache_dir: Path, repo_id: str) -> Path:
    return cache_dir / (REPO_PREFIX + repo_id.replace("/", "--"))


def scan_models(cache_dir: Path) -> list[CachedModel]:
    """Every complete GGUF model in the cache; broken links and partial downloads are skipped."""
    try:
        entries = sorted(os.scandir(cache_dir), key=lambda entry: entry.name)
    except FileNotFoundError:
        return []
    except OSError as err:
        raise StorageError(
            f"cannot read the model cache {cache_dir}: {err.strerror or err}"
        ) from err
    models: list[CachedModel] = []
    for entry in entries:
        if entry.name.startswith(REPO_PREFIX) and entry.is_dir():
            repo_id = "/".join(entry.name[len(REPO_PREFIX) :].split("--"))
            models.extend(_scan_repo(Path(entry.path), repo_id))
    return models


def _scan_repo(folder: Path, repo_id: str) -> list[CachedModel]:
    refs_by_commit = _refs_by_commit(folder)
    snapshots = folder / "snapshots"
    if not snapshots.is_dir():
        return []
    models: list[CachedModel] = []
    for snapshot in sorted(snapshots.iterdir()):
        groups: dict[str, list[tuple[str, Path]]] = defaultdict(list)
        for path in sorted(snapshot.rglob("*")):
            repo_path = path.relative_to(snapshot).as_posix()
            if not is_gguf_name(repo_path) or not path.is_file():
                continue
            part = split_part(repo_path)
            key = repo_path if part is None else repo_path[: -len(".gguf")].rsplit("-", 3)[0]
            groups[key].append((repo_path, path))
        for parts in groups.values():
            first = split_part(parts[0][0])
            if first is not None and (first.index != 1 or len(parts) != first.count):
                continue  # An incomplete split model cannot be loaded.
            models.append(
                CachedModel(
                    repo_id=repo_id,
                    commit=snapshot.name,
                    refs=tuple(refs_by_commit.get(snapshot.name, ())),
                    repo_paths=tuple(repo_path for repo_path, _ in parts),
                    snapshot_paths=tuple(path for _, path in parts),
                    size_bytes=sum(path.stat().st_size for _, path in parts),
                )
            )
    return models


def _refs_by_commit(folder: Path) -> dict[str, list[str]]:
    refs: dict[str, list[str]] = defaultdict(list)
    refs_dir = folder / "refs"
    if refs_dir.is_dir():
        for ref_file in sorted(refs_dir.rglob("*")):
            if ref_file.is_file():
                commit = ref_file.read_text(encoding="utf-8").strip()
                refs[commit].append(ref_file.relative_to(refs_dir).as_posix())
    return refs


def delete_model(cache_dir: Path, model: CachedModel) -> int:
    """Remove a model from the cache and return the bytes freed.

    Blobs that another snapshot still links to stay. A snapshot left without any GGUF loses its
    companion files too (README, configs), and a repo left without snapshots is removed whole.
    """
    folder = repo_folder(cache_dir, model.repo_id)
    snapshot = folder / "snapshots" / model.commit
    blobs = folder / "blobs"
    try:
        for path in model.snapshot_paths:
            path.unlink(missing_ok=True)
        leftovers = [path for path in snapshot.rglob("*") if not path.is_dir()]
        if not any(is_gguf_name(path.name) for path in leftovers):
            for path in leftovers:
                path.unlink()
            _remove_empty_folders(snapshot)
            _remove_refs_to(folder / "refs", model.commit)
        still_linked = {
            path.resolve() for path in folder.glob("snapshots/**/*") if path.is_symlink()
        }
        freed = 0
        remaining_snapshots = (folder / "snapshots").is_dir() and any(
            (folder / "snapshots").iterdir()
        )
        for blob in sorted(blobs.iterdir()) if blobs.is_dir() else []:
            partial = blob.name.endswith(".incomplete") or blob.name.endswith(".lock")
            if blob.resolve() in still_linked or (partial and remaining_snapshots):
                continue
            freed += blob.stat().st_size
            blob.unlink()
        if not remaining_snapshots:
            shutil.rmtree(folder)
    except OSError as err:
        raise StorageError(f"cannot delete {model.repo_id}: {err.strerror or err}") from err
    return freed


def _remove_empty_folders(root: Path) -> None:
    for directory in sorted(root.rglob("*"), key=lambda path: len(path.parts), reverse=True):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()


def _remove_refs_to(refs_dir: Path, commit: str) -> None:
    for ref_file in refs_dir.rglob("*") if refs_dir.is_dir() else []:
        if ref_file.is_file() and ref_file.read_text(encoding="utf-8").strip() == commit:
            ref_file.unlink()


def cache_size(cache_dir: Path) -> int:
    """Bytes used by every blob in the cache, GGUF or not."""
    total = 0
    if not cache_dir.is_dir():
        return 0
    for repo in cache_dir.glob(REPO_PREFIX + "*"):
        blobs = repo / "blobs"
        if blobs.is_dir():
            total += sum(blob.stat().st_size for blob in blobs.iterdir() if blob.is_file())
    return total
