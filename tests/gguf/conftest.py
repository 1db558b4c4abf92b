"""A tiny llama model written with ggml's reference GGUF writer, for the reader tests.

The project runs pytest in importlib mode, where test modules cannot import a sibling helper, so
the builder lives here and reaches the tests through fixtures. The starter model's fixture is in
tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
import pytest

N_EMBD = 256
N_FF = 512
N_LAYERS = 2
N_HEAD = 4
N_HEAD_KV = 2
N_VOCAB = 1100  # over the reader's default array limit, like every real vocabulary
N_CTX_TRAIN = 2048
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

Q = gguf.GGMLQuantizationType
# Two layers with different mixes, so each layer's byte count is its own.
LAYER_TYPES: tuple[dict[str, Q], ...] = (
    {"attn_q": Q.Q4_K, "attn_k": Q.Q5_K, "attn_v": Q.Q6_K, "attn_output": Q.Q4_K,
     "ffn_gate": Q.Q4_K, "ffn_up": Q.Q4_K, "ffn_down": Q.Q6_K},
    {"attn_q": Q.Q4_K, "attn_k": Q.IQ4_XS, "attn_v": Q.Q8_0, "attn_output": Q.Q4_K,
     "ffn_gate": Q.Q4_K, "ffn_up": Q.BF16, "ffn_down": Q.Q5_0},
)  # fmt: skip
# (row length, rows) in ggml order, i.e. the reverse of numpy's (rows, row length).
LAYER_SHAPES = {
    "attn_q": (N_EMBD, N_EMBD),
    "attn_k": (N_EMBD, N_EMBD * N_HEAD_KV // N_HEAD),
    "attn_v": (N_EMBD, N_EMBD * N_HEAD_KV // N_HEAD),
    "attn_output": (N_EMBD, N_EMBD),
    "ffn_gate": (N_EMBD, N_FF),
    "ffn_up": (N_EMBD, N_FF),
    "ffn_down": (N_FF, N_EMBD),
}


# What the writer wrote for each tensor: (ggml shape, ggml type, bytes).
TensorTable = dict[str, tuple[tuple[int, ...], int, int]]


def _quantized(shape: tuple[int, int], qtype: Q, seed: int) -> np.ndarray:
    """Stand-in bytes for a quantized tensor; the reader never looks at tensor data."""
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    row_length, rows = shape
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(rows, row_length // block * type_size), dtype=np.uint8)


def write_model(
    path: Path,
    *,
    file_type: int | None = 15,
    customize: Callable[[gguf.GGUFWriter], None] | None = None,
    endianess: gguf.GGUFEndian = gguf.GGUFEndian.LITTLE,
) -> TensorTable:
    """Write a two-layer llama model with real metadata and stand-in tensor data."""
    writer = gguf.GGUFWriter(path, "llama", endianess=endianess)
    writer.add_name("Tiny Llama")
    writer.add_license("apache-2.0")
    writer.add_context_length(N_CTX_TRAIN)
    writer.add_block_count(N_LAYERS)
    writer.add_embedding_length(N_EMBD)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_layer_norm_rms_eps(1e-5)
    if file_type is not None:
        writer.add_file_type(file_type)
    writer.add_tokenizer_model("gpt2")
    tokens = [f"tok{i}".encode() for i in range(N_VOCAB)]
    tokens[5] = b"\xff\xfe"  # a byte-level token that is not UTF-8 on its own
    writer.add_token_list(tokens)
    writer.add_token_scores([float(-i) for i in range(N_VOCAB)])
    writer.add_token_types([1] * N_VOCAB)
    writer.add_chat_template(CHATML_TEMPLATE)
    if customize:
        customize(writer)

    written: TensorTable = {}

    def add(name: str, data: np.ndarray, shape: tuple[int, ...], qtype: Q) -> None:
        raw_dtype = qtype if data.dtype == np.uint8 else None
        writer.add_tensor(name, data, raw_dtype=raw_dtype)
        written[name] = (shape, int(qtype), data.nbytes)

    embd = np.zeros((N_VOCAB, N_EMBD), dtype=np.float16)
    add("token_embd.weight", embd, (N_EMBD, N_VOCAB), Q.F16)
    for layer, types in enumerate(LAYER_TYPES):
        norm = np.ones(N_EMBD, dtype=np.float32)
        add(f"blk.{layer}.attn_norm.weight", norm, (N_EMBD,), Q.F32)
        for index, (kind, qtype) in enumerate(types.items()):
            shape = LAYER_SHAPES[kind]
            data = _quantized(shape, qtype, seed=100 * layer + index)
            add(f"blk.{layer}.{kind}.weight", data, shape, qtype)
        add(f"blk.{layer}.ffn_norm.weight", norm, (N_EMBD,), Q.F32)
    add("output_norm.weight", np.ones(N_EMBD, dtype=np.float32), (N_EMBD,), Q.F32)
    output = _quantized((N_EMBD, N_VOCAB), Q.Q6_K, seed=7)
    add("output.weight", output, (N_EMBD, N_VOCAB), Q.Q6_K)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return written


@pytest.fixture
def make_model(tmp_path: Path) -> Callable[..., Path]:
    """`make_model(name, **options)` writes a variant of the tiny model (see `write_model`)."""

    def make(name: str = "tiny.gguf", **options: object) -> Path:
        path = tmp_path / name
        write_model(path, **options)  # type: ignore[arg-type]
        return path

    return make


@pytest.fixture
def tiny_written(tmp_path: Path) -> tuple[Path, TensorTable]:
    path = tmp_path / "tiny.gguf"
    return path, write_model(path)


@pytest.fixture
def tiny_model(tiny_written: tuple[Path, TensorTable]) -> Path:
    return tiny_written[0]


@pytest.fixture
def tiny_tensors(tiny_written: tuple[Path, TensorTable]) -> TensorTable:
    return tiny_written[1]
