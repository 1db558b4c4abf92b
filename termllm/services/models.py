"""Model management: what is on disk, pulling from the Hub, removing, describing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from termllm.config import Config
from termllm.domain import HubRef, LocalModel, ModelRef, ModelSource, PathRef, TransferProgress
from termllm.errors import ModelNotFoundError, ModelRefError, NetworkError, RefusedError
from termllm.gguf.source import ByteSource, FileSource
from termllm.gguf.summary import MemoryEstimate, ModelSummary, estimate_memory
from termllm.hub.cache import CachedModel, delete_model, scan_models
from termllm.refs import parse_model_ref
from termllm.services.catalog import find_local, list_local_models, require_local
from termllm.services.model_summary import FactsCache, ModelFacts, summarize_sources
from termllm.services.selection import RemoteModel, select_model
from termllm.state import StateFile

if TYPE_CHECKING:
    from termllm.hub.client import HubClient


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
    def __init__(self, config: Config, hub_factory: Callable[[], HubClient]) -> None:
        self._config = config
        self._hub_factory = hub_factory
        self._hub: HubClient | None = None
        self._state = StateFile(config.paths.state_file)

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
            self._state.remember_local_model(ref.path.resolve())
            models = self.list_models()
        return require_local(self._with_default_quant(ref, models), models)

    def pull(self, text: str, progress: TransferProgress) -> PullResult:
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
        chosen = select_model(ref, listing, self._config.settings.models.default_quant)
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

    def info(self, text: str) -> ModelInfo:
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
            return self._describe(local.ref, str(local.path), local.source.value, sources)
        assert isinstance(ref, HubRef)
        listing = self.hub.list_files(ref.repo_id, ref.revision)
        chosen: RemoteModel = select_model(ref, listing, self._config.settings.models.default_quant)
        remote_sources = [
            self.hub.open_remote(ref.repo_id, item.path, listing.commit) for item in chosen.files
        ]
        label = (
            f"{ref.repo_id}:{chosen.quant}"
            if chosen.quant
            else f"{ref.repo_id}/{chosen.first.path}"
        )
        return self._describe(label, remote_sources[0].label, "remote", remote_sources)

    def _describe(
        self, ref: str, location: str, source: str, sources: Sequence[ByteSource]
    ) -> ModelInfo:
        summary = summarize_sources(sources)
        trained = summary.context_length or self._config.settings.models.context_size
        context_size = min(trained, self._config.settings.models.context_size)
        return ModelInfo(
            ref=ref,
            location=location,
            source=source,
            parts=len(sources),
            summary=summary,
            context_size=context_size,
            memory=estimate_memory(summary, context_size),
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
