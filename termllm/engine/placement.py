"""How many layers go to the GPU, and how much context RAM can hold.

Pure arithmetic on the GGUF's figures and the devices' free memory (no llama_cpp, no I/O), so it
is tested with synthetic numbers. The estimates follow how the llama.cpp in llama-cpp-python
0.3.36 places a model:

- `n_gpu_layers` counts the output layer as one of its slots and offloads it first (llama.cpp
  PR 18148): k >= 1 puts the output layer and the last k - 1 blocks on the GPU, and only
  k >= block_count + 1 offloads everything, which llama-cpp-python's -1 stands for.
- The token embedding (the input layer) always stays on the CPU. A model without
  `output.weight` (tied embeddings) gets a copy of `token_embd` on the GPU as its output layer.
- A layer's KV cache lives on the layer's device (llama-cpp-python offloads KV by default).
- Every figure follows the load's MemoryOptions: the KV cache's type and whether attention runs
  as flash attention (which shrinks the compute buffer).

Call `choose_placement` first, then `fit_context` with the placement's `gpu_layers`: the context
only ever shrinks there, which only lowers what the GPU needs.
"""

from __future__ import annotations

from collections.abc import Sequence

from termllm.engine.base import GpuLayers, Placement
from termllm.engine.hardware import Device, DeviceType
from termllm.gguf.summary import ModelSummary, estimate_memory, layer_kv_bytes
from termllm.setting_fields import MemoryOptions

OFFLOAD_ALL = -1
"""The `n_gpu_layers` that offloads every block and the output layer."""
MIN_CONTEXT = 512
"""`fit_context` never goes below this many tokens."""

_MIB = 1024**2
_GIB = 1024**3
_MIN_MARGIN = _GIB
_MARGIN_SHARE = 0.05
_CONTEXT_STEP = 256


def safety_margin(free_bytes: int) -> int:
    """Device memory that auto placement leaves unplanned.

    1 GiB is the margin llama.cpp's own fitting (`--fit`) keeps per device: it covers what the
    estimate leaves out (the CUDA pool's temporaries, cuBLAS workspace, smaller activations,
    other programs). The 5 % share grows it with the device, since the estimate's errors grow
    with the model that fills it.
    """
    return max(_MIN_MARGIN, int(free_bytes * _MARGIN_SHARE))


def choose_placement(
    summary: ModelSummary,
    n_ctx: int,
    requested: GpuLayers,
    devices: Sequence[Device],
    supports_offload: bool,
    memory: MemoryOptions | None = None,
) -> Placement:
    """Decide `n_gpu_layers` for a model run with a context of `n_ctx`.

    `Placement.gpu_layers` is the value to pass as llama-cpp-python's `n_gpu_layers`: 0 (CPU
    only), OFFLOAD_ALL, or 1 + the number of blocks offloaded (the output layer comes first).
    An explicit `requested` N counts blocks, as the reason shows them: "N of 32 layers".
    """
    total = _block_count(summary)
    if requested == 0:
        return _on_cpu(total, "--gpu-layers 0")
    if not supports_offload:
        return _on_cpu(total, "this llama.cpp build has no GPU support")
    device = offload_device(devices)
    if device is None:
        return _on_cpu(total, "no GPU device found")
    if total == 0:
        return _on_cpu(total, "the GGUF does not say how many layers the model has")
    if isinstance(requested, str):
        return _fit_layers(summary, n_ctx, device, memory or MemoryOptions())
    flag, label = f"--gpu-layers {requested}", _label(device)
    # A negative count means "all" to llama.cpp and llama-cpp-python alike.
    if requested < 0 or requested >= total:
        return Placement(OFFLOAD_ALL, total, label, f"{flag}: all {total} layers on {device.name}")
    reason = f"{flag}: {requested} of {total} layers on {device.name}"
    return Placement(requested + 1, total, label, reason)


def fit_context(
    summary: ModelSummary,
    requested_ctx: int,
    ram_available_bytes: int | None,
    gpu_layers: int,
    memory: MemoryOptions | None = None,
) -> tuple[int, str | None]:
    """Halve the context until what stays in RAM fits in `ram_available_bytes`, with a warning.

    Never below MIN_CONTEXT, never above `requested_ctx`; a context that is reduced stays a
    multiple of 256. `gpu_layers` is `Placement.gpu_layers`. Unknown RAM changes nothing.
    """
    if ram_available_bytes is None:
        return requested_ctx, None
    n_ctx = requested_ctx
    needed = ram_needed(summary, n_ctx, gpu_layers, memory)
    while n_ctx > MIN_CONTEXT and needed > ram_available_bytes:
        n_ctx = max(MIN_CONTEXT, n_ctx // 2 // _CONTEXT_STEP * _CONTEXT_STEP)
        needed = ram_needed(summary, n_ctx, gpu_layers, memory)
    if n_ctx == requested_ctx:
        return requested_ctx, None
    warning = (
        f"context reduced from {requested_ctx} to {n_ctx} tokens: "
        f"{_size(ram_available_bytes)} of RAM free"
    )
    if needed > ram_available_bytes:
        warning += f", {_size(needed)} needed"
    return n_ctx, warning


def _fit_layers(
    summary: ModelSummary, n_ctx: int, device: Device, memory: MemoryOptions
) -> Placement:
    weights = _layer_bytes(summary)
    layers = _layer_costs(summary, n_ctx, memory)
    total = len(layers)
    free = device.memory_free_bytes
    margin = safety_margin(free)
    where = f"in {device.name} ({_size(free)} free"
    # The output layer is `output.weight`, or the copy of `token_embd` a tied model gets: either
    # way at most non_layer_bytes, which also holds the token embedding that stays on the CPU.
    fixed = estimate_memory(summary, n_ctx, memory).compute_bytes + summary.non_layer_bytes
    everything = fixed + sum(layers)
    if everything + margin <= free:
        reason = f"all {total} layers fit {where}, {_size(everything)} needed)"
        return Placement(OFFLOAD_ALL, total, _label(device), reason)
    # With blocks left on the CPU, llama.cpp copies their weights into the GPU's compute buffer
    # to run large batches there (op offload), which makes that buffer one layer larger.
    fixed += max(weights)
    budget = free - margin - fixed
    count, used = 0, 0
    for cost in reversed(layers):  # llama.cpp offloads the last blocks first
        if used + cost > budget:
            break
        used, count = used + cost, count + 1
    if count == 0:
        needed = _size(fixed + layers[-1] + margin)
        reason = f"not even one layer fits {where}, {needed} needed with a {_size(margin)} margin)"
        return _on_cpu(total, reason)
    reason = f"{count} of {total} layers fit {where}); the rest run on the CPU"
    return Placement(count + 1, total, _label(device), reason)


def ram_needed(
    summary: ModelSummary, n_ctx: int, gpu_layers: int, memory: MemoryOptions | None = None
) -> int:
    """RAM for the CPU's share: its blocks with their KV cache, the non-layer tensors, compute,
    and what the host keeps wherever the layers run (the vocabulary, the logits)."""
    memory = memory or MemoryOptions()
    estimate = estimate_memory(summary, n_ctx, memory)
    layers = _layer_costs(summary, n_ctx, memory)
    if gpu_layers < 0:
        on_cpu = 0
    elif gpu_layers == 0:
        on_cpu = len(layers)
    else:
        on_cpu = max(0, len(layers) - (gpu_layers - 1))
    # Weights are mmap'd and read in lazily, but counting them whole keeps RAM from being
    # overcommitted; the token embedding never leaves the CPU, so non-layer bytes always count.
    needed = summary.non_layer_bytes + sum(layers[:on_cpu]) + estimate.other_bytes
    if on_cpu:
        needed += estimate.compute_bytes
    return needed


def _layer_costs(summary: ModelSummary, n_ctx: int, memory: MemoryOptions) -> tuple[int, ...]:
    """Weights plus KV cache of each block, from the first to the last."""
    weights = _layer_bytes(summary)
    kv = layer_kv_bytes(summary, n_ctx, memory.kv_type)
    return tuple(w + (kv[i] if i < len(kv) else 0) for i, w in enumerate(weights))


def _layer_bytes(summary: ModelSummary) -> tuple[int, ...]:
    """Weights of each block; a block this file lacks (another part of a split model holds it)
    counts as the largest one seen."""
    total = _block_count(summary)
    known = summary.layer_bytes[:total]
    largest = max(known, default=0)
    return tuple(known[i] if i < len(known) and known[i] else largest for i in range(total))


def _block_count(summary: ModelSummary) -> int:
    return summary.block_count or len(summary.layer_bytes)


def offload_device(devices: Sequence[Device]) -> Device | None:
    """The device to plan against: the GPU with the most free memory.

    llama.cpp uses integrated GPUs only when there is no discrete one. With several GPUs it
    splits the offloaded layers across all of them in proportion to their free memory; planning
    against the largest alone keeps the estimate conservative.
    """
    gpus = [d for d in devices if d.type is DeviceType.GPU]
    candidates = gpus or [d for d in devices if d.type is DeviceType.IGPU]
    return max(candidates, key=lambda d: d.memory_free_bytes, default=None)


def _on_cpu(total: int, reason: str) -> Placement:
    return Placement(0, total, "CPU", reason)


def _label(device: Device) -> str:
    return f"{device.name} ({device.description})" if device.description else device.name


def _size(n_bytes: int) -> str:
    return f"{n_bytes / _GIB:.1f} GiB" if n_bytes >= _GIB else f"{n_bytes / _MIB:.0f} MiB"
