"""What loading a model will choose, decided before any weights are read: context size, threads,
GPU layers and flash attention. Used by the loader and by `termllm doctor -m REF`, which
explains it."""

from __future__ import annotations

from dataclasses import dataclass

from termllm.engine.base import LoadRequest, Placement
from termllm.engine.hardware import Device, list_devices
from termllm.engine.placement import choose_placement, fit_context
from termllm.engine.system import read_system_info
from termllm.gguf.reader import read_header
from termllm.gguf.source import FileSource
from termllm.gguf.summary import ModelSummary, summarize
from termllm.setting_fields import MemoryOptions


@dataclass(frozen=True)
class LoadPlan:
    summary: ModelSummary
    n_ctx: int
    threads: int
    placement: Placement
    memory: MemoryOptions
    """As asked; `memory.flash` says whether flash attention runs."""
    warnings: tuple[str, ...]


def plan_load(request: LoadRequest) -> LoadPlan:
    """Read the GGUF header (a non-GGUF or truncated file fails here, with a GGUFError, before
    llama.cpp sees it) and fit context and layers to this machine's memory."""
    import llama_cpp

    summary = summarize(read_header(FileSource(request.model_path)))
    warnings: list[str] = []
    system = read_system_info()
    trained = summary.context_length or request.context_limit
    n_ctx = request.n_ctx or min(trained, request.context_limit)
    if summary.context_length and n_ctx > trained and not request.beyond_trained:
        warnings.append(
            f"context capped at {trained} tokens, the model's trained context ({n_ctx} asked;"
            " --force-ctx keeps it)"
        )
        n_ctx = trained
    supports_offload = bool(llama_cpp.llama_supports_gpu_offload())
    devices = _devices(supports_offload and request.gpu_layers != 0, warnings)
    memory = request.memory
    placement = choose_placement(
        summary, n_ctx, request.gpu_layers, devices, supports_offload, memory
    )
    fitted, warning = fit_context(
        summary, n_ctx, system.ram_available_bytes, placement.gpu_layers, memory
    )
    if warning is not None:
        warnings.append(warning)
    if fitted != n_ctx:
        # A smaller context leaves more device memory, so more layers may fit now.
        n_ctx = fitted
        placement = choose_placement(
            summary, n_ctx, request.gpu_layers, devices, supports_offload, memory
        )
    threads = request.threads or system.physical_cores or 1
    return LoadPlan(summary, n_ctx, threads, placement, memory, tuple(warnings))


def _devices(wanted: bool, warnings: list[str]) -> tuple[Device, ...]:
    if not wanted:
        return ()
    try:
        return list_devices()
    except (OSError, AttributeError, RuntimeError) as exc:
        warnings.append(f"cannot list GPU devices ({exc}); running on the CPU")
        return ()
