from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import pytest

from termllm.gguf.reader import read_header
from termllm.gguf.source import FileSource
from termllm.gguf.summary import (
    MemoryEstimate,
    ModelSummary,
    chat_template_family,
    estimate_memory,
    layer_kv_bytes,
    summarize,
)
from termllm.setting_fields import FlashAttention, KvCacheType, MemoryOptions

MIB = 1024**2


def summary_of(path: Path) -> ModelSummary:
    return summarize(read_header(FileSource(path)))


def test_tiny_model_summary(
    tiny_model: Path, tiny_tensors: dict[str, tuple[tuple[int, ...], int, int]]
) -> None:
    summary = summary_of(tiny_model)
    tensors = tiny_tensors

    def layer_bytes(layer: int) -> int:
        return sum(n for name, (_, _, n) in tensors.items() if name.startswith(f"blk.{layer}."))

    assert summary.architecture == "llama"
    assert summary.name == "Tiny Llama"
    assert summary.parameter_count == sum(math.prod(shape) for shape, _, _ in tensors.values())
    assert summary.quant == "Q4_K_M"
    assert summary.file_size == tiny_model.stat().st_size
    assert summary.context_length == 2048
    assert summary.block_count == 2
    assert summary.embedding_length == 256
    assert summary.head_count == 4
    assert summary.head_count_kv == 2
    assert summary.kv_heads_per_layer == (2, 2)
    assert (summary.key_length, summary.value_length) == (64, 64)  # 256 / 4 heads
    assert summary.vocab_size == 1100  # from the token list: no llama.vocab_size key
    assert summary.chat_template is not None
    assert summary.chat_template.startswith("{% for message in messages %}")
    assert summary.chat_template_family == "chatml"
    assert summary.license == "apache-2.0"
    assert (summary.split_count, summary.split_index) == (None, None)
    assert summary.layer_bytes == (layer_bytes(0), layer_bytes(1))
    assert layer_bytes(0) != layer_bytes(1)
    assert summary.non_layer_bytes == sum(
        n for name, (_, _, n) in tensors.items() if not name.startswith("blk.")
    )
    assert summary.weights_bytes == sum(n for _, _, n in tensors.values())


def test_tiny_model_memory_estimate(tiny_model: Path) -> None:
    summary = summary_of(tiny_model)

    estimate = estimate_memory(summary, 1024)

    kv_cache = 2 * 1024 * 2 * (64 + 64) * 2  # layers, positions, KV heads, K + V, f16
    # Scores and mask (heads + 1, positions, batch, f32) beside the feed-forward activations
    # (512 x batch, f32): more than the logits. Then the residual stream, 3 x 256 x batch.
    attention = (4 + 1) * 1024 * 512 * 4 + 512 * 512 * 4
    compute = attention + 3 * 256 * 512 * 4
    other = 1100 * (448 + 4)  # the vocabulary, and one row of logits
    total = summary.weights_bytes + kv_cache + compute + other
    assert estimate == MemoryEstimate(
        summary.weights_bytes, kv_cache, compute, total, other, KvCacheType.F16, False
    )
    # With flash attention and a short context the logits are the larger.
    flash = MemoryOptions(flash_attention=FlashAttention.ON)
    logits = 1100 * 256 * 4
    residual = 3 * 256 * 256 * 4
    assert estimate_memory(summary, 16, flash, n_ubatch=256).compute_bytes == logits + residual


def test_the_context_is_counted_in_whole_cells_of_256(tiny_model: Path) -> None:
    summary = summary_of(tiny_model)

    # llama.cpp rounds the context up: 1000 tokens take 1024 cells.
    assert estimate_memory(summary, 1000) == estimate_memory(summary, 1024)
    assert estimate_memory(summary, 1025).kv_cache_bytes == 2 * 1280 * 2 * 128 * 2


@pytest.mark.parametrize("file_type", [None, 999])
def test_quant_is_inferred_from_tensors_when_file_type_is_missing_or_unknown(
    make_model: Callable[..., Path], file_type: int | None
) -> None:
    path = make_model(file_type=file_type)

    # Q4_K is the type of 7 of the 14 layer matrices.
    assert summary_of(path).quant == "Q4_K"


@pytest.mark.parametrize(
    ("file_type", "quant"), [(0, "F32"), (1, "F16"), (3, "Q4_1"), (32, "BF16"), (38, "MXFP4_MOE")]
)
def test_quant_names(make_model: Callable[..., Path], file_type: int, quant: str) -> None:
    assert summary_of(make_model(file_type=file_type)).quant == quant


def test_per_layer_kv_heads(make_model: Callable[..., Path]) -> None:
    # Hybrid models give each layer its own count; 0 for a layer without attention.
    def customize(writer: gguf.GGUFWriter) -> None:
        writer.add_head_count_kv([2, 0])
        writer.add_key_length(32)
        writer.add_value_length(48)
        add_tensor = writer.add_tensor

        def without_attention_in_layer_1(name: str, *args: Any, **kwargs: Any) -> None:
            if not name.startswith(("blk.1.attn_q", "blk.1.attn_k", "blk.1.attn_v")):
                add_tensor(name, *args, **kwargs)

        writer.add_tensor = without_attention_in_layer_1  # type: ignore[method-assign]

    summary = summary_of(make_model(customize=customize))

    assert summary.kv_heads_per_layer == (2, 0)
    assert summary.head_count_kv == 2
    assert (summary.key_length, summary.value_length) == (32, 48)
    assert estimate_memory(summary, 256).kv_cache_bytes == 256 * 2 * (32 + 48) * 2


def test_missing_kv_head_count_means_one_per_head(make_model: Callable[..., Path]) -> None:
    def customize(writer: gguf.GGUFWriter) -> None:
        del writer.kv_data[0]["llama.attention.head_count_kv"]

    summary = summary_of(make_model(customize=customize))

    assert summary.kv_heads_per_layer == (4, 4)


def test_license_name_split_and_vocab_size_keys(make_model: Callable[..., Path]) -> None:
    def customize(writer: gguf.GGUFWriter) -> None:
        writer.add_license("other")
        writer.add_license_name("gemma")
        writer.add_uint16("split.no", 1)
        writer.add_uint16("split.count", 3)
        writer.add_vocab_size(1024)

    summary = summary_of(make_model(customize=customize))

    assert summary.license == "gemma"
    assert (summary.split_index, summary.split_count) == (1, 3)
    assert summary.vocab_size == 1024


def test_no_chat_template(make_model: Callable[..., Path]) -> None:
    def customize(writer: gguf.GGUFWriter) -> None:
        del writer.kv_data[0]["tokenizer.chat_template"]

    summary = summary_of(make_model(customize=customize))

    assert (summary.chat_template, summary.chat_template_family) == (None, None)


def test_starter_model_summary(starter_model: Path) -> None:
    summary = summary_of(starter_model)

    assert summary.architecture == "llama"
    assert summary.parameter_count == 134_515_008
    assert summary.quant == "Q4_1"
    assert summary.context_length == 8192
    assert summary.block_count == 30
    assert summary.embedding_length == 576
    assert (summary.head_count, summary.head_count_kv) == (9, 3)
    assert (summary.key_length, summary.value_length) == (64, 64)
    assert summary.vocab_size == 49152
    assert summary.chat_template_family == "chatml"
    assert summary.license == "apache-2.0"
    assert summary.layer_bytes == (2_216_448,) * 30
    # Embeddings tied to the output: the one non-layer matrix is the token embedding.
    assert summary.non_layer_bytes == 30_083_328


def test_starter_model_memory_estimate(starter_model: Path) -> None:
    estimate = estimate_memory(summary_of(starter_model), 4096)

    # llama.cpp reports the same: "model buffer size = 92.10 MiB", "KV buffer size = 90.00 MiB".
    assert estimate.weights_bytes == 96_576_768
    assert estimate.kv_cache_bytes == 90 * 1024 * 1024
    # llama.cpp reserves 99.4 MiB: the logits, and the residual stream's three buffers.
    assert estimate.compute_bytes == 49152 * 512 * 4 + 3 * 576 * 512 * 4
    assert estimate.other_bytes == 49152 * 452
    assert estimate.total_bytes == sum(
        (estimate.weights_bytes, estimate.kv_cache_bytes, estimate.compute_bytes, 49152 * 452)
    )


# What llama.cpp 0.3.36 logged loading the starter model ("KV buffer size", "compute buffer
# size"), in MiB: the estimates must follow the KV type and flash attention as it does.
LLAMA_CPP_BUFFERS = [
    (2048, MemoryOptions(KvCacheType.F16, FlashAttention.OFF), 45.00, 99.38),
    (2048, MemoryOptions(KvCacheType.Q8_0), 23.91, 99.38),
    (2048, MemoryOptions(KvCacheType.Q4_0), 12.66, 99.38),
    (8192, MemoryOptions(KvCacheType.F16, FlashAttention.OFF), 180.00, 166.38),
    (8192, MemoryOptions(KvCacheType.F16, FlashAttention.ON), 180.00, 98.25),
    (8192, MemoryOptions(KvCacheType.Q8_0), 95.62, 99.38),
    (32768, MemoryOptions(KvCacheType.F16, FlashAttention.OFF), 720.00, 646.38),
    (32768, MemoryOptions(KvCacheType.Q8_0), 382.50, 99.38),
    (32768, MemoryOptions(KvCacheType.Q4_0), 202.50, 99.38),
]


@pytest.mark.parametrize(("n_ctx", "memory", "kv_mib", "compute_mib"), LLAMA_CPP_BUFFERS)
def test_starter_model_estimate_follows_the_kv_type_and_flash_attention(
    starter_model: Path, n_ctx: int, memory: MemoryOptions, kv_mib: float, compute_mib: float
) -> None:
    estimate = estimate_memory(summary_of(starter_model), n_ctx, memory)

    assert estimate.kv_cache_bytes / MIB == pytest.approx(kv_mib, abs=0.01)
    assert estimate.compute_bytes / MIB == pytest.approx(compute_mib, rel=0.05)
    assert (estimate.kv_cache_type, estimate.flash_attention) == (memory.kv_type, memory.flash)


def test_kv_cache_bytes_scale_with_the_kv_type(starter_model: Path) -> None:
    summary = summary_of(starter_model)
    f16 = layer_kv_bytes(summary, 8192, KvCacheType.F16)

    # 2 bytes an element; a block of 32 elements takes 34 bytes in q8_0 and 18 in q4_0.
    assert layer_kv_bytes(summary, 8192, KvCacheType.Q8_0) == tuple(b * 34 // 64 for b in f16)
    assert layer_kv_bytes(summary, 8192, KvCacheType.Q4_0) == tuple(b * 18 // 64 for b in f16)


def test_flash_attention_leaves_out_the_attention_scores(tiny_model: Path) -> None:
    summary = summary_of(tiny_model)
    without = estimate_memory(summary, 32768, MemoryOptions(flash_attention=FlashAttention.OFF))
    flash = estimate_memory(summary, 32768, MemoryOptions(flash_attention=FlashAttention.ON))

    # Flash attention keeps the mask, in f16, beside the feed-forward activations.
    assert flash.compute_bytes == 32768 * 512 * 2 + 512 * 512 * 4 + 3 * 256 * 512 * 4
    assert without.compute_bytes > 5 * flash.compute_bytes
    assert flash.kv_cache_bytes == without.kv_cache_bytes


def test_sliding_window_layers_are_counted_whole(make_model: Callable[..., Path]) -> None:
    # A Gemma-like header that says its window: llama-cpp-python's default context gives
    # sliding-window layers a full-size cache (swa_full), so they take every position.
    def customize(writer: gguf.GGUFWriter) -> None:
        writer.add_sliding_window(512)

    summary = summary_of(make_model(customize=customize))

    assert estimate_memory(summary, 8192).kv_cache_bytes == 2 * 8192 * 2 * 128 * 2


@pytest.mark.parametrize(
    ("template", "family"),
    [
        ("{{ '<|im_start|>' + message['role'] }}", "chatml"),
        ("<|im_start|>{{ role }}<|im_sep|>", "phi4"),
        ("<|start_header_id|>{{ role }}<|end_header_id|>", "llama3"),
        ("[INST] <<SYS>>\n{{ system }}\n<</SYS>>", "llama2"),
        ("{{ '[INST] ' + content + ' [/INST]' }}", "mistral"),
        ("[SYSTEM_PROMPT]{{ system }}[/SYSTEM_PROMPT][INST]", "mistral"),
        ("<start_of_turn>user\n{{ content }}<end_of_turn>", "gemma"),
        ("<|turn>user\n{{ content }}<turn|>", "gemma4"),
        ("<|user|>\n{{ content }}<|end|>\n<|assistant|>", "phi3"),
        ("<|user|>\n{{ content }}</s>\n<|assistant|>", "zephyr"),
        ("<\uff5cUser\uff5c>{{ content }}<\uff5cAssistant\uff5c>", "deepseek"),
        ("<|START_OF_TURN_TOKEN|><|USER_TOKEN|>", "command-r"),
        ("<|start_of_role|>user<|end_of_role|>", "granite"),
        ("<|header_start|>user<|header_end|>", "llama4"),
        ("<|start|>assistant<|channel|>final<|message|>", "gpt-oss"),
        ("[gMASK]<sop><|user|>", "glm4"),
        ("{{ 'USER: ' + content + ' ASSISTANT: ' }}", "vicuna"),
        ("{{ messages[0]['content'] }}", "custom"),
    ],
)
def test_chat_template_family(template: str, family: str) -> None:
    assert chat_template_family(template) == family
