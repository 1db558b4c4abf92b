"""Fit verdicts before a download, on synthetic model, device and RAM figures."""

from __future__ import annotations

from dataclasses import replace

import pytest

from termllm.engine.fit import Fit, Machine, Where, describe_fit, fit_model, read_machine
from termllm.engine.hardware import Device, DeviceType
from termllm.gguf.summary import MemoryEstimate, ModelSummary
from termllm.services.repo_fit import FileFit, recommend
from termllm.setting_fields import KvCacheType

MIB = 1024**2
GIB = 1024**3
CTX = 4096


def llama(layers: int = 32, layer_bytes: int = 200 * MIB) -> ModelSummary:
    """A llama-like model: 32 heads of 128, 8 KV heads (16 MiB of KV per layer at 4096 ctx)."""
    return ModelSummary(
        architecture="llama",
        name="synthetic",
        parameter_count=7_000_000_000,
        quant="Q4_K_M",
        file_size=layers * layer_bytes + 500 * MIB,
        context_length=32768,
        block_count=layers,
        embedding_length=4096,
        head_count=32,
        head_count_kv=8,
        kv_heads_per_layer=(8,) * layers,
        key_length=128,
        value_length=128,
        vocab_size=32000,
        feed_forward_length=14336,
        chat_template=None,
        chat_template_family=None,
        license=None,
        split_count=None,
        split_index=None,
        layer_bytes=(layer_bytes,) * layers,
        non_layer_bytes=500 * MIB,
    )


def gpu_machine(free: int, ram: int | None = 64 * GIB) -> Machine:
    return Machine((Device("CUDA0", "Test GPU", DeviceType.GPU, free, free),), True, ram)


def cpu_machine(ram: int | None) -> Machine:
    return Machine((), False, ram)


def test_this_machine_is_read_as_a_load_would_see_it() -> None:
    here = read_machine()
    assert here.ram_available_bytes is None or here.ram_available_bytes > 0
    assert here.gpu is None or here.gpu.memory_free_bytes > 0
    assert fit_model(llama(), CTX, here).memory.total_bytes > 0


def test_all_layers_on_a_gpu_with_room_and_its_margin() -> None:
    verdict = fit_model(llama(), CTX, gpu_machine(24 * GIB))
    assert (verdict.where, verdict.gpu_blocks, verdict.total_blocks) == (Where.GPU, 32, 32)
    assert verdict.fastest and verdict.short_of == ()
    assert describe_fit(verdict) == "all on the GPU"
    # The memory needed is weights + KV cache + compute + the host's share, whatever the placement.
    memory = verdict.memory
    parts = memory.weights_bytes + memory.kv_cache_bytes + memory.compute_bytes
    assert memory.total_bytes == parts + memory.other_bytes
    assert memory.kv_cache_bytes == 32 * 16 * MIB


def test_a_gpu_with_room_for_some_layers() -> None:
    verdict = fit_model(llama(), CTX, gpu_machine(4 * GIB))
    assert verdict.where is Where.PARTIAL and not verdict.fastest
    assert 0 < verdict.gpu_blocks < 32
    assert describe_fit(verdict) == f"{verdict.gpu_blocks} of 32 layers on the GPU"
    # What the GPU does not hold, RAM does.
    assert verdict.ram_bytes > (32 - verdict.gpu_blocks) * 216 * MIB


def test_a_gpu_too_small_for_one_layer_runs_on_the_cpu() -> None:
    verdict = fit_model(llama(), CTX, gpu_machine(GIB))
    assert verdict.where is Where.CPU and not verdict.fastest
    assert describe_fit(verdict) == "CPU only"


def test_too_little_ram_does_not_fit() -> None:
    verdict = fit_model(llama(), CTX, gpu_machine(4 * GIB, ram=2 * GIB))
    assert verdict.where is Where.NOWHERE and verdict.short_of == ("RAM", "VRAM")
    assert describe_fit(verdict) == "does not fit: RAM + VRAM"
    verdict = fit_model(llama(), CTX, cpu_machine(2 * GIB))
    assert verdict.where is Where.NOWHERE and verdict.short_of == ("RAM",)


@pytest.mark.parametrize(
    ("ram", "fastest"),
    [(64 * GIB, True), (8 * GIB, False), (None, True)],
    ids=["ample", "fits-without-the-margin", "unknown"],
)
def test_cpu_only_machines_judge_ram_with_the_margin(ram: int | None, fastest: bool) -> None:
    model = llama()  # ~7.3 GiB in all at 4096 ctx
    verdict = fit_model(model, CTX, cpu_machine(ram))
    assert verdict.where is Where.CPU and verdict.fastest is fastest


def entry(label: str, size: int, fit: Fit, *, disk_fits: bool = True) -> FileFit:
    return FileFit(
        label=label,
        paths=(f"m-{label}.gguf",),
        quant=label,
        size_bytes=size,
        parameter_count=1_000_000_000,
        bits_per_weight=size * 8 / 1e9,
        estimate="listing size",
        fit=fit,
        to_fetch_bytes=size,
        disk_fits=disk_fits,
    )


def fitted(where: Where, fastest: bool) -> Fit:
    memory = MemoryEstimate(1, 1, 1, 4, 1, KvCacheType.F16, flash_attention=False)
    short = ("RAM",) if where is Where.NOWHERE else ()
    return Fit(where, 0, 32, memory, 3, fastest, short)


def test_recommendation_prefers_the_fastest_memory_then_quality() -> None:
    machine = gpu_machine(24 * GIB)
    files = [
        entry("Q4_K_M", 600_000_000, fitted(Where.GPU, True)),
        entry("Q8_0", 1_100_000_000, fitted(Where.GPU, True)),
        entry("F16", 2_000_000_000, fitted(Where.PARTIAL, False)),
    ]
    best, reason = recommend(files, machine, CTX)
    assert best is files[1] and "runs entirely on the GPU" in reason

    best, reason = recommend(
        [replace(f, fit=fitted(Where.CPU, False)) for f in files], machine, CTX
    )
    assert best is not None and best.label == "F16" and "fits at all" in reason


def test_recommendation_caps_quality_at_16_bits_and_skips_full_disks() -> None:
    machine = cpu_machine(64 * GIB)
    f16 = entry("F16", 2_000_000_000, fitted(Where.CPU, True))
    f32 = entry("F32", 4_000_000_000, fitted(Where.CPU, True))
    big = entry("Q8_0", 1_100_000_000, fitted(Where.CPU, True))
    assert recommend([big, f32, f16], machine, CTX)[0] is f16  # F32 is larger, not better
    full = [replace(f, disk_fits=False) for f in (big, f16, f32)]
    best, reason = recommend(full, machine, CTX)
    assert best is None and "short of disk" in reason
    assert full[0].verdict == "does not fit: disk"
    nowhere = entry("Q2_K", 1, fitted(Where.NOWHERE, False), disk_fits=False)
    assert nowhere.verdict == "does not fit: RAM + disk"
