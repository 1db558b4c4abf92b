"""The models on this machine, from every source, and finding one by reference."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from termllm.domain import HubRef, LocalModel, ModelRef, ModelSource, PathRef, ServerRef
from termllm.errors import ModelNotFoundError, ModelRefError
from termllm.hub.cache import CachedModel, scan_models
from termllm.model_files import model_base_name, model_stem, quant_from_filename
from termllm.safe_text import argument_text
from termllm.services.package_models import find_packaged_models
from termllm.state import AppState


def list_local_models(hub_cache: Path, state: AppState) -> list[LocalModel]:
    """Hub cache models first (newest refs), then packaged models, then files used by path."""
    cached = scan_models(hub_cache)
    models = [_from_cache(model, cached, state) for model in cached]
    seen = {path.resolve() for model in models for path in model.paths}
    for packaged in find_packaged_models():
        if packaged not in seen:
            seen.add(packaged)
            models.append(_from_file(packaged, ModelSource.PACKAGE, state))
    for text in state.local_models:
        path = Path(text)
        if path.is_file() and path.resolve() not in seen:
            seen.add(path.resolve())
            models.append(_from_file(path, ModelSource.LOCAL, state))
    return _with_unique_refs(models)


def _from_cache(
    model: CachedModel, everything: Sequence[CachedModel], state: AppState
) -> LocalModel:
    quant = quant_from_filename(model.repo_paths[0])
    same_repo = [other for other in everything if other.repo_id == model.repo_id]
    same_quant = [
        other
        for other in same_repo
        if other.commit == model.commit and quant_from_filename(other.repo_paths[0]) == quant
    ]
    commits = {other.commit for other in same_repo}
    revision = None
    if len(commits) > 1 and "main" not in model.refs:
        revision = model.refs[0] if model.refs else model.commit[:12]
    base = model.repo_id + (f"@{revision}" if revision else "")
    ref = f"{base}:{quant}" if quant and len(same_quant) == 1 else f"{base}/{model.repo_paths[0]}"
    return LocalModel(
        ref=ref,
        paths=model.snapshot_paths,
        source=ModelSource.HUB,
        size_bytes=model.size_bytes,
        quant=quant,
        repo_id=model.repo_id,
        revision=revision,
        commit=model.commit,
        refs=model.refs,
        last_used=state.last_used.get(str(model.snapshot_paths[0])),
    )


def _from_file(path: Path, source: ModelSource, state: AppState) -> LocalModel:
    return LocalModel(
        # A ref is text the history stores: bytes of the name that are not UTF-8 become U+FFFD
        # (`-m` reads a name so too), while `paths` keeps them to open the file.
        ref=argument_text(model_stem(path.name)),
        paths=(path,),
        source=source,
        size_bytes=path.stat().st_size,
        quant=quant_from_filename(path.name),
        last_used=state.last_used.get(str(path)),
    )


def _with_unique_refs(models: list[LocalModel]) -> list[LocalModel]:
    """Files outside the cache are named by stem; where two share one, their paths name them."""
    counts = Counter(model.ref.lower() for model in models)
    unique: list[LocalModel] = []
    for model in models:
        if model.source is not ModelSource.HUB and counts[model.ref.lower()] > 1:
            model = LocalModel(**{**model.__dict__, "ref": argument_text(str(model.path))})
        unique.append(model)
    return unique


def find_local(ref: ModelRef, models: Sequence[LocalModel]) -> LocalModel | None:
    """The one local model a reference names, None when none does; ambiguity is an error."""
    if isinstance(ref, ServerRef):
        return None
    if isinstance(ref, PathRef):
        target = ref.path.resolve()
        return next((m for m in models if target in {p.resolve() for p in m.paths}), None)
    if isinstance(ref, HubRef):
        matches = [m for m in models if m.repo_id == ref.repo_id and _matches_hub_ref(m, ref)]
        at_main = [m for m in matches if "main" in m.refs]
        if not ref.revision and at_main:
            matches = at_main
    else:
        matches = [m for m in models if ref.name.lower() in _names(m)]
    if len(matches) > 1:
        choices = ", ".join(m.ref for m in matches)
        raise ModelRefError(f"'{ref}' matches several local models: {choices}")
    return matches[0] if matches else None


def require_local(ref: ModelRef, models: Sequence[LocalModel]) -> LocalModel:
    model = find_local(ref, models)
    if model is not None:
        return model
    if isinstance(ref, PathRef):
        raise ModelNotFoundError(f"{ref.path}: no such file")
    hint = "run `termllm ls` to see local models"
    if isinstance(ref, HubRef):
        hint = f"run `termllm pull {ref}` to download it"
    raise ModelNotFoundError(f"no local model matches '{ref}': {hint}")


def _matches_hub_ref(model: LocalModel, ref: HubRef) -> bool:
    if ref.revision and ref.revision not in model.refs:
        is_commit_prefix = len(ref.revision) >= 7 and (model.commit or "").startswith(ref.revision)
        if not is_commit_prefix:
            return False
    if ref.filename:
        return any(path.as_posix().endswith("/" + ref.filename) for path in model.paths)
    return ref.quant is None or model.quant == ref.quant


def _names(model: LocalModel) -> set[str]:
    names = {model.ref, model_stem(model.path.name), model_base_name(model.path.name)}
    if model.repo_id:
        names |= {model.repo_id, model.repo_id.split("/", 1)[1]}
    return {name.lower() for name in names}
