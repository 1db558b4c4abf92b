"""Model management: what is on disk, pulling from the Hub, removing, describing."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from termllm.config import Config
from termllm.domain import HubRef, LocalModel, ModelRef, ModelSource, PathRef, TransferProgress
from termllm.errors import (
    ModelNotFoundError,
    ModelRefError,
    NetworkError,
    RefusedError,
    StorageError,
    UsageError,
)
from termllm.gguf.source import ByteSource, FileSource
from termllm.gguf.summary import MemoryEstimate, ModelSummary, estimate_memory
from termllm.hub.cache import CachedModel, delete_model, scan_models
from termllm.refs import parse_model_ref
from termllm.safe_text import one_line
from termllm.services.catalog import find_local, list_local_models, require_local
from termllm.services.model_summary import FactsCache, ModelFacts, summarize_sources
from termllm.services.pull_checks import (
    AUTO_QUANT,
    Confirm,
    check_room,
    context_size_for,
    plan_listing,
    recommended_model,
)
from termllm.services.repo_fit import RepoFit
from termllm.services.selection import RemoteModel, is_projector, remote_models, select_model
from termllm.services.side_writes import SideWrites
from termllm.state import StateFile

if TYPE_CHECKING:
    from termllm.hub.client import HubClient
    from termllm.hub.listing import RepoListing
    from termllm.hub.search import HubModelResult


@dataclass(frozen=True)
class PullResult:
    model: LocalModel
    downloaded: bool


@dataclass(frozen=True)
class ModelInfo:
    ref: str
    location: str
    source: str
    parts: int
    summary: ModelSummary
    context_size: int
    memory: MemoryEstimate


class ModelService:
    def __init__(
        self, config: Config, hub_factory: Callable[[], HubClient], side_writes: SideWrites
    ) -> None:
        self._config = config
        self._hub_factory = hub_factory
        self._hub: HubClient | None = None
        self._state = StateFile(config.paths.state_file)
        self._side_writes = side_writes

    @property
    def hub(self) -> HubClient:
        if self._hub is None:
            self._hub = self._hub_factory()
        return self._hub

    def parse(self, text: str) -> ModelRef:
        return parse_model_ref(text, cwd=Path.cwd())

    def list_models(self) -> list[LocalModel]:
        return list_local_models(self._config.paths.hub_cache, self._state.read())

    def list_with_facts(self) -> list[tuple[LocalModel, ModelFacts]]:
        """Every local model with its architecture and parameter count, read once per file."""
        cache = FactsCache(self._config.paths.cache_dir / "model-facts.json")
        listed = [(model, cache.facts(model.paths)) for model in self.list_models()]
        cache.save()
        return listed

    def find(self, text: str) -> LocalModel:
        """The local model a reference names; a path to a GGUF file is remembered for `ls`."""
        ref = self.parse(text)
        models = self.list_models()
        if isinstance(ref, PathRef) and find_local(ref, models) is None:
            # Only files no other source lists: a package's or the cache's file used by path
            # stays theirs (remembered, it would outlive them and shadow their name elsewhere).
            FileSource(ref.path)  # A clear error for a missing file or a folder.
            models = self._remember(ref.path.resolve())
        return require_local(self._with_default_quant(ref, models), models)

    def find_saved(self, text: str) -> LocalModel:
        """The local model a reference read back from the history names (a conversation's
        model). An old import or another program may have put anything there: it is read by
        the same grammar, but found only among the models on disk, so no file is opened for
        it (a path names a model only if it is one `ls` lists), and quoted only as one line."""
        if any(unicodedata.category(character)[0] == "C" for character in text):
            raise self._unusable(text, "it is not a model reference")
        try:
            ref = self.parse(text)
        except ModelRefError:
            raise self._unusable(text, "it is not a model reference") from None
        models = self.list_models()
        if isinstance(ref, PathRef):
            found = find_local(ref, models)
            if found is None:
                raise self._unusable(text, "it names a file that is not a model on this machine")
            return found
        return require_local(self._with_default_quant(ref, models), models)

    @staticmethod
    def _unusable(text: str, reason: str) -> ModelNotFoundError:
        return ModelNotFoundError(
            f"this conversation's model '{one_line(text, max_chars=80)}' cannot be used:"
            f" {reason}; pass -m to choose one"
        )

    def _remember(self, path: Path) -> list[LocalModel]:
        """The models on disk once `path`, a file used by path, is one of them."""
        try:
            self._state.remember_local_model(path)
        except StorageError as err:
            self._side_writes.failed(
                self._config.paths.state_file,
                f"the list of model files used by path is not saved ({err.message})",
            )
            # Not remembered, it is still the model asked for now: listed as if it were.
            state = self._state.read()
            state.local_models.append(str(path))
            return list_local_models(self._config.paths.hub_cache, state)
        return self.list_models()

    def pull(
        self, text: str, progress: TransferProgress, confirm: Confirm | None = None
    ) -> PullResult:
        """Download a model. A file that would not fit on the disk is refused before its first
        byte; one that would not fit in memory is put to `confirm` (None: not checked)."""
        ref = self.parse(text)
        if not isinstance(ref, HubRef):
            raise RefusedError(
                f"'{text}' is not a Hub reference: pull takes owner/repo[:QUANT] or"
                " owner/repo/file.gguf"
            )
        try:
            listing = self.hub.list_files(ref.repo_id, ref.revision)
        except NetworkError:
            present = self._find_cached(ref)
            if present is not None:
                return PullResult(present, downloaded=False)
            raise
        settings = self._config.settings.models
        plan: RepoFit | None = None
        if ref.quant == AUTO_QUANT and not ref.filename:
            plan = plan_listing(self.hub, listing, None, settings)
            chosen = recommended_model(plan, listing)
        else:
            chosen = select_model(ref, listing, settings.default_quant)
        check_room(self.hub, listing, chosen, plan, confirm, settings)
        from termllm.hub.download import download

        counting = _CountingProgress(progress)
        download(self.hub, listing, chosen.files, ref.revision, counting)
        pulled = next(
            (
                model
                for model in self.list_models()
                if model.commit == listing.commit
                and model.repo_id == ref.repo_id
                and model.path.name == Path(chosen.first.path).name
            ),
            None,
        )
        if pulled is None:
            raise ModelNotFoundError(f"{chosen.first.path} was downloaded but is not in the cache")
        return PullResult(pulled, downloaded=counting.bytes_fetched > 0)

    def search(self, query: str, limit: int) -> tuple[HubModelResult, ...]:
        """GGUF repos on the Hub whose names match `query`, most downloaded first."""
        if not query.strip():
            raise UsageError("search needs some words to look for, e.g. `termllm search qwen3`")
        return self.hub.search(query.strip(), limit)

    def fit_repo(self, text: str) -> RepoFit:
        """Every model file of the Hub repo `text` names, judged as `pull` judges them, even in
        a repo of one model (the app's pull screen lists the files; `info` describes one)."""
        ref = self.parse(text)
        if not isinstance(ref, HubRef) or ref.filename or ref.quant:
            raise RefusedError(f"'{one_line(text, max_chars=120)}' is not a Hub repo (owner/repo)")
        listing = self.hub.list_files(ref.repo_id, ref.revision)
        return plan_listing(self.hub, listing, None, self._config.settings.models)

    def plan_repo(self, text: str, n_ctx: int | None = None) -> ModelInfo | RepoFit:
        """`info owner/repo`: every model file of the repo judged against this machine; a repo
        with one model (or a Hub that cannot be reached, with the default quant on disk) is
        described as `info` describes one file."""
        ref = self.parse(text)
        if not isinstance(ref, HubRef) or ref.filename or ref.quant not in (None, AUTO_QUANT):
            return self.info(text, n_ctx)
        try:
            listing = self.hub.list_files(ref.repo_id, ref.revision)
        except NetworkError:
            if ref.quant is None and self._find_cached(ref) is not None:
                return self.info(text, n_ctx)
            raise
        main = [model for model in remote_models(listing) if not is_projector(model)]
        if ref.quant is None and len(main) == 1:
            return self._describe_remote(ref, listing, n_ctx)
        plan = plan_listing(self.hub, listing, n_ctx, self._config.settings.models)
        if ref.quant == AUTO_QUANT:
            chosen = recommended_model(plan, listing)
            return self._describe_remote(
                HubRef(ref.repo_id, ref.revision, filename=chosen.first.path), listing, n_ctx
            )
        return plan

    def removal_candidate(self, text: str) -> LocalModel:
        """The model `rm` would delete, after checking termllm owns it."""
        model = self.find(text)
        if model.source is ModelSource.PACKAGE:
            raise RefusedError(
                f"{model.ref} is shipped inside a Python package ({model.path});"
                " uninstall that package with pip to remove it"
            )
        if model.source is ModelSource.LOCAL:
            raise RefusedError(
                f"{model.path} is your own file, not a download: termllm does not delete it"
                " (`termllm rm --forget` only removes it from the list)"
            )
        return model

    def remove(self, model: LocalModel) -> int:
        """Delete a downloaded model; returns the bytes freed."""
        cached = self._cached_entry(model)
        freed = delete_model(self._config.paths.hub_cache, cached)
        self._state.forget_usage(model.paths)
        return freed

    def forget(self, text: str) -> Path:
        ref = self.parse(text)
        target = ref.path.resolve() if isinstance(ref, PathRef) else self.find(text).path
        if not self._state.forget_local_model(target):
            raise ModelNotFoundError(f"{target} is not in the list of local files")
        return target

    def info(self, text: str, n_ctx: int | None = None) -> ModelInfo:
        """Describe a model from its GGUF header: local, or remote by range requests."""
        ref = self.parse(text)
        local: LocalModel | None = None
        if isinstance(ref, PathRef):
            local = self.find(text)
        else:
            models = self.list_models()
            local = find_local(self._with_default_quant(ref, models), models)
            if local is None and not isinstance(ref, HubRef):
                require_local(ref, models)
        if local is not None:
            sources: list[ByteSource] = [FileSource(path) for path in local.paths]
            return self._describe(local.ref, str(local.path), local.source.value, sources, n_ctx)
        assert isinstance(ref, HubRef)
        return self._describe_remote(ref, self.hub.list_files(ref.repo_id, ref.revision), n_ctx)

    def _describe_remote(self, ref: HubRef, listing: RepoListing, n_ctx: int | None) -> ModelInfo:
        chosen: RemoteModel = select_model(ref, listing, self._config.settings.models.default_quant)
        remote_sources = [
            self.hub.open_remote(ref.repo_id, item.path, listing.commit) for item in chosen.files
        ]
        label = (
            f"{ref.repo_id}:{chosen.quant}"
            if chosen.quant
            else f"{ref.repo_id}/{chosen.first.path}"
        )
        return self._describe(label, remote_sources[0].label, "remote", remote_sources, n_ctx)

    def _describe(
        self,
        ref: str,
        location: str,
        source: str,
        sources: Sequence[ByteSource],
        n_ctx: int | None,
    ) -> ModelInfo:
        summary = summarize_sources(sources)
        context_size = context_size_for(summary, n_ctx, self._config.settings.models)
        return ModelInfo(
            ref=ref,
            location=location,
            source=source,
            parts=len(sources),
            summary=summary,
            context_size=context_size,
            memory=estimate_memory(summary, context_size, self._config.settings.models.memory),
        )

    def _with_default_quant(self, ref: ModelRef, models: list[LocalModel]) -> ModelRef:
        """`owner/repo` alone means its default quant when that one is on disk."""
        if isinstance(ref, HubRef) and not ref.quant and not ref.filename:
            default = HubRef(
                ref.repo_id, ref.revision, quant=self._config.settings.models.default_quant
            )
            if find_local(default, models) is not None:
                return default
        return ref

    def _find_cached(self, ref: HubRef) -> LocalModel | None:
        models = self.list_models()
        try:
            return find_local(self._with_default_quant(ref, models), models)
        except ModelRefError:
            return None

    def _cached_entry(self, model: LocalModel) -> CachedModel:
        for cached in scan_models(self._config.paths.hub_cache):
            if cached.snapshot_paths == model.paths:
                return cached
        raise ModelNotFoundError(f"{model.ref} is no longer in the cache")


class _CountingProgress:
    """Passes progress on and notes whether any byte was actually fetched."""

    def __init__(self, inner: TransferProgress) -> None:
        self._inner = inner
        self.bytes_fetched = 0

    def begin(self, label: str, total_bytes: int, done_bytes: int) -> None:
        self._inner.begin(label, total_bytes, done_bytes)

    def advance(self, n_bytes: int) -> None:
        self.bytes_fetched += n_bytes
        self._inner.advance(n_bytes)

    def end(self) -> None:
        self._inner.end()
