"""Every model file of a Hub repo against this machine, and the one termllm recommends.

One GGUF header per model in the repo is read remotely (range requests, as `info` does); the
other quantizations of that model take its architecture and scale its tensor bytes to their
size in the listing. Quantizations of one model share every shape (layers, heads, vocabulary),
so KV cache and compute buffers are exact and only the split of bytes between blocks and
embeddings is approximated. Each file is marked with where its estimate comes from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from termllm.engine.fit import Fit, Machine, Where, describe_fit, fit_model
from termllm.gguf.source import ByteSource
from termllm.gguf.summary import ModelSummary
from termllm.model_files import model_base_name
from termllm.safe_text import one_line
from termllm.services.model_summary import summarize_sources
from termllm.services.selection import RemoteModel, is_projector
from termllm.setting_fields import MemoryOptions
from termllm.units import format_bytes

# Beyond 16 bits per weight (F32) a file is larger, not better: quality is reckoned as its
# size up to that many bits per weight, and among equals the smaller file wins.
_QUALITY_BITS = 16


@dataclass(frozen=True)
class FileFit:
    """One model of the repo (a split model's parts as one) and what it would take here."""

    label: str
    """The quantization, or the first file's name when it has none."""
    paths: tuple[str, ...]
    quant: str | None
    size_bytes: int
    parameter_count: int
    bits_per_weight: float | None
    estimate: str
    """"header" (its own header was read) or "listing size" (scaled from another's)."""
    fit: Fit
    to_fetch_bytes: int
    """What a pull would still download (parts already in the cache do not count)."""
    disk_fits: bool

    @property
    def runs(self) -> bool:
        return self.fit.where is not Where.NOWHERE and self.disk_fits

    @property
    def verdict(self) -> str:
        if self.fit.where is Where.NOWHERE:
            return describe_fit(self.fit) + ("" if self.disk_fits else " + disk")
        return describe_fit(self.fit) if self.disk_fits else "does not fit: disk"


@dataclass(frozen=True)
class RepoFit:
    repo_id: str
    commit: str
    context_size: int
    machine: Machine
    disk_free_bytes: int | None
    files: tuple[FileFit, ...]
    """Smallest first."""
    recommended: FileFit | None
    reason: str
    """Why `recommended` (or why none)."""


def plan_repo(
    repo_id: str,
    commit: str,
    models: Sequence[RemoteModel],
    *,
    open_sources: Callable[[RemoteModel], Sequence[ByteSource]],
    context_size: Callable[[ModelSummary], int],
    machine: Machine,
    to_fetch: Callable[[RemoteModel], int],
    disk_free_bytes: int | None,
    default_quant: str,
    memory: MemoryOptions,
) -> RepoFit:
    """Judge every model in `models` (projectors are left out: they are not models), loaded
    with `memory`'s KV cache type and attention."""
    main = sorted((m for m in models if not is_projector(m)), key=lambda m: m.size_bytes)
    chosen = {
        base: _representative(group, default_quant) for base, group in _by_base_name(main).items()
    }
    headers = {base: summarize_sources(open_sources(model)) for base, model in chosen.items()}
    first_summary = next(iter(headers.values()), None)
    n_ctx = context_size(first_summary) if first_summary is not None else 0
    files = []
    for model in main:
        base = model_base_name(model.first.path)
        summary, estimate = _summary_for(model, headers[base], chosen[base])
        fetch = to_fetch(model)
        files.append(
            FileFit(
                label=model.quant or model.first.path,
                paths=tuple(item.path for item in model.files),
                quant=model.quant or summary.quant,
                size_bytes=model.size_bytes,
                parameter_count=summary.parameter_count,
                bits_per_weight=(
                    summary.weights_bytes * 8 / summary.parameter_count
                    if summary.parameter_count
                    else None
                ),
                estimate=estimate,
                fit=fit_model(summary, n_ctx, machine, memory),
                to_fetch_bytes=fetch,
                disk_fits=disk_free_bytes is None or fetch <= disk_free_bytes,
            )
        )
    recommended, reason = recommend(files, machine, n_ctx)
    return RepoFit(
        repo_id, commit, n_ctx, machine, disk_free_bytes, tuple(files), recommended, reason
    )


def recommend(files: Sequence[FileFit], machine: Machine, n_ctx: int) -> tuple[FileFit | None, str]:
    """The best quality that runs entirely in the fastest memory with the planner's margin;
    otherwise the best that fits at all; None when nothing does."""
    fastest = [item for item in files if item.runs and item.fit.fastest]
    memory = "on the GPU" if machine.gpu is not None else "in RAM"
    if fastest:
        return max(fastest, key=_quality), (
            f"the best quality that runs entirely {memory} at {n_ctx} ctx,"
            " with the planner's margin to spare"
        )
    running = [item for item in files if item.runs]
    if running:
        best = max(running, key=_quality)
        return best, (
            f"nothing runs entirely {memory} at {n_ctx} ctx with the planner's margin;"
            f" the best quality that fits at all ({describe_fit(best.fit)})"
        )
    if not files:
        return None, "the repo holds no model file"
    smallest = min(files, key=lambda item: item.size_bytes)
    short = smallest.verdict.removeprefix("does not fit: ")
    return None, (
        f"no file fits this machine at {n_ctx} ctx: even {smallest.label} is short of {short}"
        " (try a smaller --ctx or another model)"
    )


def _quality(item: FileFit) -> tuple[int, int]:
    capped = min(item.size_bytes, item.parameter_count * _QUALITY_BITS // 8)
    return capped, -item.size_bytes


def _by_base_name(models: Sequence[RemoteModel]) -> dict[str, list[RemoteModel]]:
    groups: dict[str, list[RemoteModel]] = {}
    for model in models:
        groups.setdefault(model_base_name(model.first.path), []).append(model)
    return groups


def _representative(group: Sequence[RemoteModel], default_quant: str) -> RemoteModel:
    """The model whose header stands for its group: the default quantization if there, else
    the smallest single file (a split model's first part holds only some tensors)."""
    for model in group:
        if model.quant == default_quant.upper():
            return model
    singles = [model for model in group if len(model.files) == 1]
    return (singles or list(group))[0]


def _summary_for(
    model: RemoteModel, header: ModelSummary, representative: RemoteModel
) -> tuple[ModelSummary, str]:
    if model is representative:
        return header, "header"
    # Bytes scale with the file; shapes, and so KV cache and compute, stay the model's.
    factor = model.size_bytes / max(1, header.file_size)
    scaled = replace(
        header,
        quant=model.quant,
        file_size=model.size_bytes,
        layer_bytes=tuple(int(size * factor) for size in header.layer_bytes),
        non_layer_bytes=int(header.non_layer_bytes * factor),
    )
    return scaled, "listing size"


def machine_summary(machine: Machine, disk_free_bytes: int | None) -> str:
    """The memory and disk a fit counted on, in the words `info` and the pull screen use."""
    gpu = machine.gpu
    parts = [
        f"{one_line(gpu.name, max_chars=40)} {format_bytes(gpu.memory_free_bytes)} free"
        if gpu is not None
        else "no GPU"
    ]
    parts.append(f"RAM {format_bytes(machine.ram_available_bytes)} available")
    parts.append(f"disk {format_bytes(disk_free_bytes)} free")
    return ", ".join(parts)
