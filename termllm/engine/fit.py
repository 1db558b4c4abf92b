"""Whether a model would run here, and how, decided before a byte of it is downloaded.

The same arithmetic as loading (placement.choose_placement and ram_needed, at the context the
load would ask for), applied to a summary read remotely, against a snapshot of this machine.
Pure once the Machine is read, so verdicts are tested on synthetic device and RAM figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from termllm.engine.hardware import Device, list_devices
from termllm.engine.placement import (
    OFFLOAD_ALL,
    choose_placement,
    offload_device,
    ram_needed,
    safety_margin,
)
from termllm.engine.system import read_system_info
from termllm.gguf.summary import MemoryEstimate, ModelSummary, estimate_memory
from termllm.setting_fields import MemoryOptions


@dataclass(frozen=True)
class Machine:
    """What a fit is judged against: the devices ggml sees and the RAM the OS can hand out."""

    devices: tuple[Device, ...]
    supports_offload: bool
    ram_available_bytes: int | None
    """None where the OS does not say; a model is then taken to fit in RAM, as loading does."""

    @property
    def gpu(self) -> Device | None:
        """The device layers would be offloaded to; None runs everything on the CPU."""
        return offload_device(self.devices) if self.supports_offload else None


def read_machine() -> Machine:
    """This machine now. A build or driver that cannot list devices means CPU only, as a load
    would decide (planning._devices)."""
    import llama_cpp

    supports = bool(llama_cpp.llama_supports_gpu_offload())
    devices: tuple[Device, ...] = ()
    if supports:
        try:
            devices = list_devices()
        except (OSError, AttributeError, RuntimeError):
            supports = False
    return Machine(devices, supports, read_system_info().ram_available_bytes)


class Where(StrEnum):
    GPU = "gpu"
    """Every layer on the GPU."""
    PARTIAL = "partial"
    """Some layers on the GPU, the rest on the CPU."""
    CPU = "cpu"
    NOWHERE = "none"
    """Not in this machine's memory at this context."""


@dataclass(frozen=True)
class Fit:
    where: Where
    gpu_blocks: int
    """Blocks offloaded (the output layer comes with any); total_blocks when all are."""
    total_blocks: int
    memory: MemoryEstimate
    ram_bytes: int
    """RAM the CPU's share needs: its blocks with their KV cache, the embeddings, compute."""
    fastest: bool
    """Runs entirely in the fastest memory here, with the planner's margin left over: all on
    the GPU (choose_placement keeps its margin), or, on a machine without one, in RAM."""
    short_of: tuple[str, ...]
    """"RAM", and "VRAM" on a machine with a GPU, when `where` is NOWHERE."""


def fit_model(
    summary: ModelSummary, n_ctx: int, machine: Machine, memory: MemoryOptions | None = None
) -> Fit:
    """Where the model would run with a context of `n_ctx`, as an auto load with `memory`'s KV
    cache and attention would place it."""
    placement = choose_placement(
        summary, n_ctx, "auto", machine.devices, machine.supports_offload, memory
    )
    ram = ram_needed(summary, n_ctx, placement.gpu_layers, memory)
    available = machine.ram_available_bytes
    ram_fits = available is None or ram <= available
    gpu = machine.gpu
    total = placement.total_layers
    if placement.gpu_layers == OFFLOAD_ALL:
        where, blocks = Where.GPU, total
    elif placement.gpu_layers > 0:
        where, blocks = Where.PARTIAL, placement.gpu_layers - 1
    else:
        where, blocks = Where.CPU, 0
    if gpu is not None:
        fastest = where is Where.GPU and ram_fits
    else:
        # Without a GPU, RAM is the fastest memory: the same margin rule as a device's.
        fastest = available is None or ram + safety_margin(available) <= available
    short_of: tuple[str, ...] = ()
    if not ram_fits:
        where, blocks = Where.NOWHERE, 0
        short_of = ("RAM", "VRAM") if gpu is not None else ("RAM",)
    memory_estimate = estimate_memory(summary, n_ctx, memory)
    return Fit(where, blocks, total, memory_estimate, ram, fastest, short_of)


def describe_fit(fit: Fit) -> str:
    """A few words for a table cell: "all on the GPU", "20 of 32 layers on the GPU"…"""
    if fit.where is Where.GPU:
        return "all on the GPU"
    if fit.where is Where.PARTIAL:
        return f"{fit.gpu_blocks} of {fit.total_blocks} layers on the GPU"
    if fit.where is Where.CPU:
        return "CPU only"
    return "does not fit: " + " + ".join(fit.short_of)
