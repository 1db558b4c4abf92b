"""The GPU-layer chooser and the context fitter, on synthetic device and RAM figures."""

from __future__ import annotations

from pathlib import Path

from termllm.engine.base import Placement
from termllm.engine.hardware import Device, DeviceType
from termllm.engine.placement import (
    MIN_CONTEXT,
    OFFLOAD_ALL,
    choose_placement,
    fit_context,
    safety_margin,
)
from termllm.gguf.reader import read_header
from termllm.gguf.source import FileSource
from termllm.gguf.summary import ModelSummary, summarize

MIB = 1024**2
GIB = 1024**3
CPU = Device("CPU", "AMD EPYC 9654", DeviceType.CPU, 512 * GIB, 512 * GIB)


def synthetic(
    layers: int,
    layer_bytes: int,
    *,
    non_layer_bytes: int = 500 * MIB,
    heads: int = 32,
    kv_heads: int = 8,
    head_dim: int = 128,
    vocab: int = 32000,
    split: tuple[int, ...] | None = None,
) -> ModelSummary:
    """A llama-like model of `layers` blocks of `layer_bytes` each (or the sizes in `split`)."""
    sizes = split if split is not None else (layer_bytes,) * layers
    return ModelSummary(
        architecture="llama",
        name="synthetic",
        parameter_count=0,
        quant="F16",
        file_size=sum(sizes) + non_layer_bytes,
        context_length=32768,
        block_count=layers,
        embedding_length=heads * head_dim,
        head_count=heads,
        head_count_kv=kv_heads,
        kv_heads_per_layer=(kv_heads,) * layers,
        key_length=head_dim,
        value_length=head_dim,
        vocab_size=vocab,
        feed_forward_length=None,
        chat_template=None,
        chat_template_family=None,
        license=None,
        split_count=2 if split is not None else None,
        split_index=0 if split is not None else None,
        layer_bytes=sizes,
        non_layer_bytes=non_layer_bytes,
    )


def gpu(
    free: int,
    name: str = "CUDA0",
    description: str = "NVIDIA H200",
    kind: DeviceType = DeviceType.GPU,
) -> Device:
    return Device(name, description, kind, free, max(free, 8 * GIB))


# 32 blocks of 200 MiB; at n_ctx 4096 each block's KV cache is 4096 x 8 heads x (128 + 128) x 2
# bytes = 16 MiB, and the compute buffer is the attention scores and mask, (32 + 1) x 4096 x
# 512 x 4 = 264 MiB, plus the residual stream's 3 x 4096 x 512 x 4 = 24 MiB: 288 MiB.
MODEL = synthetic(32, 200 * MIB)
N_CTX = 4096
BLOCK = 216 * MIB
COMPUTE = 288 * MIB
# Under 20 GiB free the margin is its 1 GiB floor. With blocks on the CPU, the GPU also holds
# the output layer (at most the 500 MiB of non-layer tensors), compute, and one layer's weights
# copied in for large batches.
FIXED = 1024 * MIB + COMPUTE + 500 * MIB
PARTIAL_FIXED = FIXED + 200 * MIB


def test_no_gpu_support_in_the_build_keeps_everything_on_the_cpu() -> None:
    placement = choose_placement(MODEL, N_CTX, "auto", [CPU, gpu(80 * GIB)], False)
    assert placement == Placement(0, 32, "CPU", "this llama.cpp build has no GPU support")
    explicit = choose_placement(MODEL, N_CTX, 8, [CPU, gpu(80 * GIB)], False)
    assert explicit == placement


def test_no_gpu_device_keeps_everything_on_the_cpu() -> None:
    blas = Device("BLAS", "OpenBLAS", DeviceType.ACCEL, 0, 0)
    for requested in ("auto", 8):
        placement = choose_placement(MODEL, N_CTX, requested, [CPU, blas], True)
        assert placement == Placement(0, 32, "CPU", "no GPU device found")


def test_a_large_gpu_takes_a_whole_1b_f16_model() -> None:
    # TinyLlama-like: 16 blocks of ~100 MB in F16, 4 KV heads of 64, a 262 MB embedding table.
    model = synthetic(16, 100_000_000, non_layer_bytes=262_144_000, kv_heads=4, head_dim=64)
    placement = choose_placement(model, 2048, "auto", [CPU, gpu(int(139.3 * GIB))], True)
    assert placement == Placement(
        OFFLOAD_ALL,
        16,
        "CUDA0 (NVIDIA H200)",
        "all 16 layers fit in CUDA0 (139.3 GiB free, 1.9 GiB needed)",
    )


def test_everything_fits_to_the_byte_and_one_byte_less_leaves_the_first_block_on_the_cpu() -> None:
    everything = FIXED + 32 * BLOCK
    assert choose_placement(MODEL, N_CTX, "auto", [gpu(everything)], True).gpu_layers == OFFLOAD_ALL

    placement = choose_placement(MODEL, N_CTX, "auto", [gpu(everything - 1)], True)
    # n_gpu_layers 32 is the output layer and the last 31 blocks.
    assert (placement.gpu_layers, placement.total_layers) == (32, 32)
    assert placement.reason.startswith("31 of 32 layers fit in CUDA0")


def test_memory_for_half_the_blocks_offloads_half() -> None:
    free = PARTIAL_FIXED + 16 * BLOCK
    placement = choose_placement(MODEL, N_CTX, "auto", [CPU, gpu(free)], True)
    assert placement == Placement(
        17,
        32,
        "CUDA0 (NVIDIA H200)",
        "16 of 32 layers fit in CUDA0 (5.3 GiB free); the rest run on the CPU",
    )
    assert choose_placement(MODEL, N_CTX, "auto", [gpu(free - 1)], True).gpu_layers == 16


def test_no_room_for_one_block_stays_on_the_cpu_and_says_why() -> None:
    placement = choose_placement(MODEL, N_CTX, "auto", [CPU, gpu(PARTIAL_FIXED)], True)
    assert placement == Placement(
        0,
        32,
        "CPU",
        "not even one layer fits in CUDA0 (2.0 GiB free, 2.2 GiB needed with a 1.0 GiB margin)",
    )
    one_short = PARTIAL_FIXED + BLOCK - 1
    assert choose_placement(MODEL, N_CTX, "auto", [gpu(one_short)], True).gpu_layers == 0
    assert choose_placement(MODEL, N_CTX, "auto", [gpu(one_short + 1)], True).gpu_layers == 2


def test_a_longer_context_needs_more_room() -> None:
    free = PARTIAL_FIXED + 16 * BLOCK
    assert choose_placement(MODEL, 4 * N_CTX, "auto", [gpu(free)], True).gpu_layers < 17


def test_the_margin_grows_with_the_device() -> None:
    assert safety_margin(4 * GIB) == GIB
    assert safety_margin(140 * GIB) == 7 * GIB


def test_an_explicit_count_is_taken_as_given_and_clamped_to_the_model() -> None:
    tiny = gpu(1 * GIB)  # an explicit count is the user's call, not checked against memory
    partial = choose_placement(MODEL, N_CTX, 8, [CPU, tiny], True)
    assert partial == Placement(
        9, 32, "CUDA0 (NVIDIA H200)", "--gpu-layers 8: 8 of 32 layers on CUDA0"
    )
    for requested in (32, 99, -1):
        placement = choose_placement(MODEL, N_CTX, requested, [CPU, tiny], True)
        assert (placement.gpu_layers, placement.total_layers) == (OFFLOAD_ALL, 32)
        assert placement.reason == f"--gpu-layers {requested}: all 32 layers on CUDA0"
        assert placement.blocks_on_gpu == 32
    assert partial.blocks_on_gpu == 8
    assert choose_placement(MODEL, N_CTX, 0, [CPU, tiny], True).blocks_on_gpu == 0


def test_explicit_zero_stays_on_the_cpu_even_with_a_gpu() -> None:
    placement = choose_placement(MODEL, N_CTX, 0, [CPU, gpu(80 * GIB)], True)
    assert placement == Placement(0, 32, "CPU", "--gpu-layers 0")


def test_several_gpus_plan_against_the_one_with_most_free_memory() -> None:
    small = gpu(4 * GIB, "CUDA0", "NVIDIA RTX A2000")
    large = gpu(24 * GIB, "CUDA1", "NVIDIA RTX 4090")
    placement = choose_placement(MODEL, N_CTX, "auto", [CPU, small, large], True)
    assert (placement.gpu_layers, placement.device) == (OFFLOAD_ALL, "CUDA1 (NVIDIA RTX 4090)")
    assert placement.reason.startswith("all 32 layers fit in CUDA1 (24.0 GiB free")


def test_an_integrated_gpu_counts_when_there_is_no_discrete_one() -> None:
    igpu = gpu(32 * GIB, "Vulkan0", "AMD Radeon 780M", DeviceType.IGPU)
    placement = choose_placement(MODEL, N_CTX, "auto", [CPU, igpu], True)
    assert (placement.gpu_layers, placement.device) == (OFFLOAD_ALL, "Vulkan0 (AMD Radeon 780M)")
    # llama.cpp itself leaves an iGPU out when a discrete GPU is there.
    discrete = gpu(16 * GIB, "Vulkan1", "")
    placement = choose_placement(MODEL, N_CTX, "auto", [CPU, igpu, discrete], True)
    assert placement.device == "Vulkan1"


def test_blocks_held_by_other_parts_of_a_split_model_count_as_the_largest() -> None:
    split = synthetic(4, 0, split=(200 * MIB, 200 * MIB, 0, 0))
    whole = synthetic(4, 200 * MIB)
    for free in (FIXED + 4 * BLOCK, FIXED + 4 * BLOCK - 1):
        assert (
            choose_placement(split, N_CTX, "auto", [gpu(free)], True).gpu_layers
            == choose_placement(whole, N_CTX, "auto", [gpu(free)], True).gpu_layers
        )


def test_an_unknown_layer_count_stays_on_the_cpu() -> None:
    model = synthetic(0, 0, split=())
    placement = choose_placement(model, N_CTX, "auto", [gpu(80 * GIB)], True)
    assert placement == Placement(
        0, 0, "CPU", "the GGUF does not say how many layers the model has"
    )


def test_the_starter_model_fits_whole_in_an_8_gib_gpu(starter_model: Path) -> None:
    summary = summarize(read_header(FileSource(starter_model)))
    device = gpu(8 * GIB, "CUDA0", "NVIDIA GeForce RTX 4060")
    placement = choose_placement(summary, 4096, "auto", [CPU, device], True)
    assert (placement.gpu_layers, placement.total_layers) == (OFFLOAD_ALL, 30)
    assert placement.device == "CUDA0 (NVIDIA GeForce RTX 4060)"
    assert placement.reason.startswith("all 30 layers fit in CUDA0 (8.0 GiB free, ")


# On the CPU alone, MODEL needs 6.25 GiB of blocks, 0.5 GiB of other tensors and 38 MiB for
# the vocabulary and the residual stream, plus per 4096 tokens of context 0.5 GiB of KV cache
# and 264 MiB of attention scores: 12.85 GiB at 32768, 9.82 at 16384, 8.30 at 8192.
def test_small_ram_halves_the_context_until_it_fits() -> None:
    assert fit_context(MODEL, 32768, 9 * GIB, 0) == (
        8192,
        "context reduced from 32768 to 8192 tokens: 9.0 GiB of RAM free",
    )


def test_enough_ram_leaves_the_context_alone() -> None:
    assert fit_context(MODEL, 32768, 13 * GIB, 0) == (32768, None)


def test_unknown_ram_leaves_the_context_alone() -> None:
    assert fit_context(MODEL, 32768, None, 0) == (32768, None)


def test_the_context_never_drops_below_the_minimum() -> None:
    n_ctx, warning = fit_context(MODEL, 32768, 1 * GIB, 0)
    assert n_ctx == MIN_CONTEXT
    assert (
        warning == "context reduced from 32768 to 512 tokens: 1.0 GiB of RAM free, 6.9 GiB needed"
    )


def test_the_context_is_never_increased() -> None:
    assert fit_context(MODEL, 300, 1 * GIB, 0) == (300, None)


def test_a_reduced_context_is_a_multiple_of_256() -> None:
    n_ctx, warning = fit_context(MODEL, 5000, int(7.3 * GIB), 0)
    assert (n_ctx, n_ctx % 256) == (2304, 0)
    assert warning is not None


def test_offloaded_blocks_do_not_count_against_ram() -> None:
    # Everything offloaded: only the 0.5 GiB of non-layer tensors (the token embedding) and the
    # vocabulary stay.
    assert fit_context(MODEL, 32768, 1 * GIB, OFFLOAD_ALL) == (32768, None)
    # n_gpu_layers 17: the output layer and 16 blocks on the GPU, 16 blocks in RAM:
    # 3.125 + 0.5 GiB, plus 1 GiB of KV cache and 1.05 GiB of compute at 16384 tokens.
    assert fit_context(MODEL, 32768, 6 * GIB, 17)[0] == 16384
