"""Choosing which files of a Hub repo a reference means."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from termllm.domain import HubRef
from termllm.errors import ModelNotFoundError, ModelRefError
from termllm.hub.listing import RemoteFile, RepoListing
from termllm.model_files import is_gguf_name, quant_from_filename, split_part
from termllm.safe_text import one_line

# A repo can list hundreds of thousands of files; an error line names this many at most.
_NAMES_QUOTED = 8


@dataclass(frozen=True)
class RemoteModel:
    """One loadable model in a repo: a single GGUF, or every part of a split one, in order."""

    files: tuple[RemoteFile, ...]
    quant: str | None

    @property
    def first(self) -> RemoteFile:
        return self.files[0]

    @property
    def size_bytes(self) -> int:
        return sum(item.size for item in self.files)


def remote_models(listing: RepoListing) -> list[RemoteModel]:
    """The repo's GGUF models; multimodal projector files are not models of their own."""
    groups: dict[str, list[RemoteFile]] = defaultdict(list)
    for item in listing.files:
        if not is_gguf_name(item.path):
            continue
        part = split_part(item.path)
        key = item.path if part is None else f"{item.path.rsplit('/', 1)[0]}/{part.stem}"
        groups[key].append(item)
    models = []
    for files in groups.values():
        files.sort(key=lambda item: item.path)
        models.append(RemoteModel(tuple(files), quant_from_filename(files[0].path)))
    return models


def select_model(ref: HubRef, listing: RepoListing, default_quant: str) -> RemoteModel:
    models = remote_models(listing)
    if not models:
        if listing.refused:
            refused = _excerpt([f"'{name}'" for name in listing.refused])
            raise ModelNotFoundError(
                f"{ref.repo_id} has no GGUF file termllm will pull; the Hub lists names that"
                f" are not safe relative paths: {refused}"
            )
        raise ModelNotFoundError(f"{ref.repo_id} has no GGUF files (it may hold another format)")
    if ref.filename:
        return _by_filename(ref, models)
    if ref.quant:
        return _by_quant(ref, ref.quant, models, explicit=True)
    main_models = [model for model in models if not is_projector(model)]
    if len(main_models) == 1:
        return main_models[0]
    return _by_quant(ref, default_quant.upper(), models, explicit=False)


def _by_filename(ref: HubRef, models: Sequence[RemoteModel]) -> RemoteModel:
    assert ref.filename is not None
    for model in models:
        if any(item.path == ref.filename for item in model.files):
            return model
    for model in models:
        if any(item.path.lower() == ref.filename.lower() for item in model.files):
            return model
    raise ModelNotFoundError(
        f"{ref.repo_id} has no file '{ref.filename}'; it has: {_describe_files(models)}"
    )


def _by_quant(
    ref: HubRef, quant: str, models: Sequence[RemoteModel], *, explicit: bool
) -> RemoteModel:
    matching = [model for model in models if model.quant == quant and not is_projector(model)]
    if len(matching) == 1:
        return matching[0]
    if len(matching) > 1:
        files = _excerpt([model.first.path for model in matching])
        raise ModelRefError(
            f"{ref.repo_id} has several {quant} files ({files}); name one: "
            f"{ref.repo_id}/{matching[0].first.path}"
        )
    offered = _describe_quants(models)
    if explicit:
        raise ModelNotFoundError(f"{ref.repo_id} has no {quant} file; it offers: {offered}")
    raise ModelRefError(
        f"{ref.repo_id} has several models and no {quant}; choose one with"
        f" {ref.repo_id}:QUANT from: {offered}"
    )


def is_projector(model: RemoteModel) -> bool:
    return "mmproj" in model.first.path.rsplit("/", 1)[-1].lower()


def _describe_quants(models: Sequence[RemoteModel]) -> str:
    described = []
    for model in sorted(models, key=lambda m: m.size_bytes):
        if is_projector(model):
            continue
        label = model.quant or model.first.path
        described.append(f"{label} ({_gigabytes(model.size_bytes)})")
    return _excerpt(described)


def _describe_files(models: Sequence[RemoteModel]) -> str:
    return _excerpt([item.path for model in models for item in model.files])


def _excerpt(names: Sequence[str]) -> str:
    shown = ", ".join(one_line(name, max_chars=100) for name in names[:_NAMES_QUOTED])
    hidden = len(names) - _NAMES_QUOTED
    return f"{shown} …and {hidden:,} more" if hidden > 0 else shown


def _gigabytes(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.0f} MB"
