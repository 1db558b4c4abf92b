"""Before a pull's first byte: which file `:auto` means, whether it fits on the disk, and
whether it fits in memory (put to the front end's confirm when it does not)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from termllm.domain import HubRef
from termllm.errors import GGUFError, NetworkError, RefusedError
from termllm.services.repo_fit import FileFit, RepoFit, plan_repo
from termllm.services.selection import RemoteModel, is_projector, remote_models, select_model
from termllm.units import format_bytes

if TYPE_CHECKING:
    from termllm.config import ModelSettings
    from termllm.gguf.summary import ModelSummary
    from termllm.hub.client import HubClient
    from termllm.hub.listing import RepoListing

AUTO_QUANT = "AUTO"
"""`owner/repo:auto`: the file termllm recommends for this machine (see repo_fit.recommend)."""

Confirm = Callable[[str], bool]
"""Asked before a pull of a file that will not fit in memory; False cancels the pull."""


def context_size_for(summary: ModelSummary, n_ctx: int | None, settings: ModelSettings) -> int:
    """The context a load would ask for: --ctx, else the setting unless trained on less."""
    if n_ctx is not None:
        return n_ctx
    return min(summary.context_length or settings.context_size, settings.context_size)


def plan_listing(
    hub: HubClient, listing: RepoListing, n_ctx: int | None, settings: ModelSettings
) -> RepoFit:
    """Every model of `listing` judged against this machine and the cache's disk."""
    from termllm.engine.fit import read_machine
    from termllm.hub.space import bytes_to_fetch, free_disk_bytes

    models = remote_models(listing)
    if not any(not is_projector(model) for model in models):
        # The same errors as any other pull of a repo without a model file.
        select_model(HubRef(listing.repo_id), listing, settings.default_quant)
    return plan_repo(
        listing.repo_id,
        listing.commit,
        models,
        open_sources=lambda model: [
            hub.open_remote(listing.repo_id, item.path, listing.commit) for item in model.files
        ],
        context_size=lambda summary: context_size_for(summary, n_ctx, settings),
        machine=read_machine(),
        to_fetch=lambda model: bytes_to_fetch(hub.cache_dir, listing.repo_id, model.files),
        disk_free_bytes=free_disk_bytes(hub.cache_dir),
        default_quant=settings.default_quant,
        memory=settings.memory,
    )


def recommended_model(plan: RepoFit, listing: RepoListing) -> RemoteModel:
    if plan.recommended is None:
        raise RefusedError(f"{listing.repo_id}:auto: {plan.reason}")
    return _model_of(plan.recommended, listing)


def check_room(
    hub: HubClient,
    listing: RepoListing,
    chosen: RemoteModel,
    plan: RepoFit | None,
    confirm: Confirm | None,
    settings: ModelSettings,
) -> None:
    """Refuse a pull the disk cannot hold; ask `confirm` about one memory cannot (None: don't)."""
    from termllm.hub.space import bytes_to_fetch, free_disk_bytes

    label = _model_ref(listing.repo_id, chosen)
    missing = bytes_to_fetch(hub.cache_dir, listing.repo_id, chosen.files)
    free = free_disk_bytes(hub.cache_dir)
    if free is not None and missing > free:
        raise RefusedError(
            f"{label} needs {format_bytes(missing)} more on disk"
            f" ({format_bytes(chosen.size_bytes)} in all) and {hub.cache_dir} has"
            f" {format_bytes(free)} free: nothing downloaded"
        )
    # A pull that resumes (or finds the file whole) was asked about when it began.
    if confirm is None or missing < chosen.size_bytes:
        return
    if plan is None:
        try:
            plan = plan_listing(hub, listing, None, settings)
        # A file without a readable header fails clearly when it is loaded; a connection
        # lost while reading one is left to the download, whose error says how to resume.
        except (GGUFError, NetworkError):
            return
    entry = _entry_for(plan, chosen)
    if entry.runs:
        return
    better = plan.recommended
    alternative = (
        f"{_model_ref(listing.repo_id, _model_of(better, listing))} would"
        f" ({format_bytes(better.size_bytes)}, {better.verdict})"
        if better is not None
        else "no file of this repo would"
    )
    message = (
        f"{label} ({format_bytes(chosen.size_bytes)}) will not fit in this machine's"
        f" memory at {plan.context_size} ctx ({entry.verdict},"
        f" ~{format_bytes(entry.fit.memory.total_bytes)} needed); {alternative}"
    )
    if not confirm(message):
        raise RefusedError("pull cancelled: nothing downloaded")


def _model_ref(repo_id: str, model: RemoteModel) -> str:
    return f"{repo_id}:{model.quant}" if model.quant else f"{repo_id}/{model.first.path}"


def _entry_for(plan: RepoFit, model: RemoteModel) -> FileFit:
    paths = tuple(item.path for item in model.files)
    return next(entry for entry in plan.files if entry.paths == paths)


def _model_of(entry: FileFit, listing: RepoListing) -> RemoteModel:
    return next(
        model
        for model in remote_models(listing)
        if tuple(item.path for item in model.files) == entry.paths
    )
