"""What a GGUF header says about a model, in the terms users and the loader care about."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from termllm.gguf.ggml_types import FILE_TYPES, GGML_TYPES, ggml_type_name
from termllm.gguf.reader import ArrayInfo, GGUFHeader
from termllm.setting_fields import KvCacheType, MemoryOptions

_LAYER_TENSOR = re.compile(r"^blk\.(\d+)\.")

KV_CACHE_GGML_TYPES: dict[KvCacheType, int] = {
    KvCacheType.F16: 1,
    KvCacheType.Q8_0: 8,
    KvCacheType.Q4_0: 2,
}
"""The ggml type number of each KV cache type: llama.cpp's `type_k` and `type_v`."""
_KV_CELL_STEP = 256
"""llama.cpp rounds the context up to a multiple of this many cells."""
_HOST_BYTES_PER_TOKEN = 448
"""What llama.cpp and llama-cpp-python keep in RAM per vocabulary entry once a model is loaded
(the vocabulary and its merges, the parsed header): 21 MiB for the starter model's 49,152
tokens, measured by benchmarks/memory_estimate.py."""


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """The facts `info`, `ls` and the GPU-offload planner need, taken from one GGUF file.

    Sizes and counts cover the tensors of this file only: one part of a split model
    (`split_count` > 1) holds only some of them.
    """

    architecture: str | None
    name: str | None
    parameter_count: int
    quant: str | None  # "Q4_K_M" from general.file_type, else the commonest matrix type ("Q4_K")
    file_size: int
    context_length: int | None  # the context the model was trained for
    block_count: int | None
    embedding_length: int | None
    head_count: int | None  # the largest, where layers differ
    head_count_kv: int | None  # likewise
    kv_heads_per_layer: tuple[int, ...]  # one per layer; 0 for layers without attention
    key_length: int | None  # per head; embedding_length / head_count unless the file says
    value_length: int | None
    vocab_size: int | None
    feed_forward_length: int | None  # the largest, where layers differ
    chat_template: str | None
    chat_template_family: str | None
    license: str | None
    split_count: int | None
    split_index: int | None  # 0-based, as `split.no` is
    layer_bytes: tuple[int, ...]  # tensor bytes of each `blk.N.` layer, by N
    non_layer_bytes: int  # token embedding, output head and norms

    @property
    def weights_bytes(self) -> int:
        return sum(self.layer_bytes) + self.non_layer_bytes


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Bytes a loaded model needs; see `estimate_memory` for how each part is reckoned."""

    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    total_bytes: int
    other_bytes: int
    """Kept in RAM wherever the layers run: the vocabulary, the parsed header, the logits."""
    kv_cache_type: KvCacheType
    flash_attention: bool


def summarize(header: GGUFHeader) -> ModelSummary:
    metadata = header.metadata
    arch = _string(metadata, "general.architecture")
    prefix = f"{arch}." if arch else "\0"  # a prefix no key has, when the architecture is unknown

    block_count = _integer(metadata, f"{prefix}block_count")
    embedding_length = _integer(metadata, f"{prefix}embedding_length")
    head_counts = metadata.get(f"{prefix}attention.head_count")
    head_count = _largest(head_counts)
    # llama.cpp's default when a model does not say: every attention head has its own K and V.
    kv_counts = metadata.get(f"{prefix}attention.head_count_kv", head_counts)
    kv_heads = _per_layer(kv_counts, block_count)
    head_dim = embedding_length // head_count if embedding_length and head_count else None

    layer_bytes, non_layer_bytes = _bytes_by_layer(header, block_count or 0)
    template = _string(metadata, "tokenizer.chat_template")
    return ModelSummary(
        architecture=arch,
        name=_string(metadata, "general.name"),
        parameter_count=sum(t.n_elements for t in header.tensors),
        quant=_quant(header),
        file_size=header.file_size,
        # llama.cpp takes a trained context of 0 for "not known", as this does.
        context_length=_integer(metadata, f"{prefix}context_length") or None,
        block_count=block_count,
        embedding_length=embedding_length,
        head_count=head_count,
        head_count_kv=_largest(kv_counts),
        kv_heads_per_layer=kv_heads,
        key_length=_integer(metadata, f"{prefix}attention.key_length") or head_dim,
        value_length=_integer(metadata, f"{prefix}attention.value_length") or head_dim,
        vocab_size=_vocab_size(metadata, prefix),
        feed_forward_length=_largest(metadata.get(f"{prefix}feed_forward_length")),
        chat_template=template,
        chat_template_family=chat_template_family(template) if template else None,
        license=_license(metadata),
        split_count=_integer(metadata, "split.count"),
        split_index=_integer(metadata, "split.no"),
        layer_bytes=layer_bytes,
        non_layer_bytes=non_layer_bytes,
    )


def estimate_memory(
    summary: ModelSummary,
    n_ctx: int,
    memory: MemoryOptions | None = None,
    *,
    n_ubatch: int = 512,
) -> MemoryEstimate:
    """How much memory llama.cpp takes to run the model with a context of `n_ctx`, loaded with
    `memory`'s KV cache type and attention (None: f16, without flash attention).

    - weights: the tensor bytes, as stored (llama.cpp maps them unchanged).
    - KV cache: for every layer, K and V of each KV head at every position, in the cache's
      type (f16 2 bytes an element, q8_0 34 bytes and q4_0 18 bytes a block of 32), for the
      context rounded up to a multiple of 256 cells as llama.cpp does: `sum over layers of
      cells * kv_heads * (key_length + value_length) * bytes per element`. Sliding-window
      layers (Gemma 2/3) keep every position too: llama-cpp-python's default context
      (`swa_full`) gives them a full-size cache. Recurrent layers (0 KV heads) keep none.
    - compute: ggml reuses one scratch buffer for the whole graph, sized for the peak of one
      physical batch of `n_ubatch` tokens: the logits (`n_vocab * n_ubatch` f32), or a layer's
      attention beside its feed-forward activations, whichever is larger, plus the residual
      stream's three `n_embd * n_ubatch` f32 buffers. Without flash attention a layer's
      attention is its scores and mask (`(head_count + 1) * cells * n_ubatch` f32); flash
      attention never writes the scores, leaving the mask (`cells * n_ubatch` f16). For the
      starter model this comes within 4 % of what llama.cpp reserves (99.4 MiB at 2,048
      tokens, 646.4 MiB at 32,768 without flash attention, 98.3 MiB with it).
    - other: what stays in RAM wherever the layers run: the vocabulary and the parsed header
      (448 bytes a token, measured) and the output buffer (one row of logits, f32).
    """
    memory = memory or MemoryOptions()
    cells = _cells(n_ctx)
    flash = memory.flash
    weights = summary.weights_bytes
    kv_cache = sum(layer_kv_bytes(summary, n_ctx, memory.kv_type))
    vocab = summary.vocab_size or 0
    embedding = summary.embedding_length or 0
    logits = vocab * n_ubatch * 4
    if flash:
        attention = cells * n_ubatch * 2
    else:
        attention = ((summary.head_count or 0) + 1) * cells * n_ubatch * 4
    feed_forward = (summary.feed_forward_length or 0) * n_ubatch * 4
    compute = max(logits, attention + feed_forward) + 3 * embedding * n_ubatch * 4
    other = vocab * (_HOST_BYTES_PER_TOKEN + 4)
    return MemoryEstimate(
        weights_bytes=weights,
        kv_cache_bytes=kv_cache,
        compute_bytes=compute,
        total_bytes=weights + kv_cache + compute + other,
        other_bytes=other,
        kv_cache_type=memory.kv_type,
        flash_attention=flash,
    )


def layer_kv_bytes(
    summary: ModelSummary, n_ctx: int, kv_type: KvCacheType = KvCacheType.F16
) -> tuple[int, ...]:
    """KV-cache bytes of each layer for a context of `n_ctx`, reckoned as `estimate_memory` says."""
    ggml_type = GGML_TYPES[KV_CACHE_GGML_TYPES[kv_type]]
    elements = _cells(n_ctx) * ((summary.key_length or 0) + (summary.value_length or 0))
    # A row of K or V (a layer's heads at one position) is whole blocks of a quantized type.
    return tuple(
        elements * heads * ggml_type.type_size // ggml_type.block_size
        for heads in summary.kv_heads_per_layer
    )


def _cells(n_ctx: int) -> int:
    return -(-n_ctx // _KV_CELL_STEP) * _KV_CELL_STEP


# Ordered like llama.cpp's llm_chat_detect_template: a template can contain another family's
# marker (Phi-4 is ChatML with `<|im_sep|>`), so the more specific test comes first.
_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("gemma4", ("<|turn>",)),
    ("phi4", ("<|im_start|>", "<|im_sep|>")),
    ("chatml", ("<|im_start|>",)),
    ("gpt-oss", ("<|start|>", "<|channel|>")),
    ("mistral", ("[SYSTEM_PROMPT]",)),
    ("llama2", ("[INST]", "<<SYS>>")),
    ("mistral", ("[INST]",)),
    ("phi3", ("<|assistant|>", "<|end|>")),
    ("glm4", ("[gMASK]<sop>",)),
    ("zephyr", ("<|user|>", "<|assistant|>")),
    ("zephyr", ("<|user|>", "<|endoftext|>")),
    ("gemma", ("<start_of_turn>",)),
    ("command-r", ("<|START_OF_TURN_TOKEN|>",)),
    ("llama3", ("<|start_header_id|>",)),
    ("deepseek", ("<\uff5cUser\uff5c>",)),  # DeepSeek's bars are fullwidth (U+FF5C)
    ("exaone", ("[|assistant|]", "[|endofturn|]")),
    ("granite", ("<|start_of_role|>",)),
    ("llama4", ("<|header_start|>",)),
    ("kimi-k2", ("<|im_assistant|>",)),
    ("vicuna", ("USER: ", "ASSISTANT: ")),
)


def chat_template_family(template: str) -> str:
    """Name the prompt format a Jinja chat template produces, from the markers it contains."""
    for family, markers in _FAMILIES:
        if all(marker in template for marker in markers):
            return family
    return "custom"


def _string(metadata: dict[str, object], key: str) -> str | None:
    value = metadata.get(key)
    return value if isinstance(value, str) else None


def _integer(metadata: dict[str, object], key: str) -> int | None:
    value = metadata.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _per_layer(value: object, block_count: int | None) -> tuple[int, ...]:
    """A hyperparameter that is one number for all layers, or (hybrid models) one per layer."""
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, int))
    if isinstance(value, int) and not isinstance(value, bool) and block_count:
        return (value,) * block_count
    return ()


def _largest(value: object) -> int | None:
    """The number, or the largest of a per-layer list: what a user would call "the" count."""
    per_layer = _per_layer(value, 1)
    return max(per_layer) if per_layer else None


def _vocab_size(metadata: dict[str, object], prefix: str) -> int | None:
    size = _integer(metadata, f"{prefix}vocab_size")
    if size is not None:
        return size
    tokens = metadata.get("tokenizer.ggml.tokens")
    if isinstance(tokens, ArrayInfo):
        return tokens.length
    return len(tokens) if isinstance(tokens, list) else None


def _license(metadata: dict[str, object]) -> str | None:
    license_id = _string(metadata, "general.license")
    # Converters write "other" when the real name is in `general.license.name`.
    if license_id in (None, "other"):
        return _string(metadata, "general.license.name") or license_id
    return license_id


def _quant(header: GGUFHeader) -> str | None:
    """The file type the quantizer recorded, else the type most 2-D weight tensors use."""
    file_type = _integer(header.metadata, "general.file_type")
    if file_type is not None and file_type in FILE_TYPES:
        return FILE_TYPES[file_type]
    counts = Counter(
        t.ggml_type for t in header.tensors if t.name.endswith(".weight") and len(t.shape) == 2
    )
    if not counts:
        return None
    return ggml_type_name(counts.most_common(1)[0][0])


def _bytes_by_layer(header: GGUFHeader, block_count: int) -> tuple[tuple[int, ...], int]:
    """Tensor bytes of each `blk.N.` layer, and of everything else (embeddings, output head)."""
    layers = [0] * block_count
    other = 0
    for tensor in header.tensors:
        match = _LAYER_TENSOR.match(tensor.name)
        if match is None:
            other += tensor.n_bytes
            continue
        index = int(match[1])
        if index >= len(layers):
            layers.extend([0] * (index + 1 - len(layers)))
        layers[index] += tensor.n_bytes
    return tuple(layers), other
