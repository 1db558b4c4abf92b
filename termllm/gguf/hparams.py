"""Hyperparameters that llama.cpp asserts on, checked before it is handed the file.

llama.cpp refuses most bad values with an error termllm can report, but a few it checks with
GGML_ASSERT, which aborts the whole process (and prints a debugger backtrace on stdout). Those
are found by loading copies of a real model with one value changed: each check here stands for
one that aborted llama.cpp 0.3.36 (llama-cpp-python), and says which value is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from termllm.errors import GGUFError
from termllm.safe_text import one_line

MAX_LAYERS = 512
"""LLAMA_MAX_LAYERS: more layers (or none) abort llama.cpp."""
MAX_EXPERTS = 1024
"""LLAMA_MAX_EXPERTS of this llama.cpp: 1,025 experts abort it."""
MAX_CONTEXT_LENGTH = 1 << 24
"""The longest trained context accepted (16,777,216 tokens; the longest real one is 10M).
Over 2**31 - 1 overflows llama-cpp-python, which also allocates a buffer of that many tokens
each time it tokenizes: 2**31 - 1 took 8.6 GB and 37 s for one question."""


def check_hyperparameters(
    label: str, metadata: Mapping[str, object], tensor_names: Iterable[str]
) -> None:
    """Raise GGUFError, naming the key and its value, for a value llama.cpp would abort on.

    Only values that are present and integers are checked: a missing or mistyped one is an
    error llama.cpp reports by itself, and files that are not language models (a vision
    projector has no block count) pass untouched.
    """
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str):
        return
    prefix = f"{arch}."

    def bad(key: str, value: int, why: str) -> GGUFError:
        name = one_line(prefix + key, max_chars=100)
        return GGUFError(f"{label}: unusable model: {name} is {value:,} ({why})")

    blocks = _integer(metadata, prefix + "block_count")
    if blocks is not None and not 1 <= blocks <= MAX_LAYERS:
        raise bad("block_count", blocks, f"llama.cpp loads 1 to {MAX_LAYERS} layers")

    context = _integer(metadata, prefix + "context_length")
    if context is not None and context > MAX_CONTEXT_LENGTH:
        raise bad("context_length", context, f"termllm accepts up to {MAX_CONTEXT_LENGTH:,}")

    experts = _integer(metadata, prefix + "expert_count") or 0
    if experts > MAX_EXPERTS:
        raise bad("expert_count", experts, f"llama.cpp supports up to {MAX_EXPERTS:,} experts")
    used = max(_per_layer(metadata.get(prefix + "expert_used_count")), default=0)
    if used > experts:
        raise bad("expert_used_count", used, f"more than the {experts:,} experts of the model")
    if experts and not used:
        raise bad("expert_used_count", used, f"the model has {experts:,} experts to use")

    # A per-layer count of 0 KV heads marks a layer without attention (hybrid models); a layer
    # that has attention weights all the same makes llama.cpp's graph assert.
    kv_heads = metadata.get(prefix + "attention.head_count_kv")
    if isinstance(kv_heads, list):
        names = frozenset(tensor_names)
        for layer, heads in enumerate(kv_heads):
            if heads == 0 and f"blk.{layer}.attn_k.weight" in names:
                raise bad(
                    "attention.head_count_kv",
                    heads,
                    f"for layer {layer}, which has attention weights",
                )


def _integer(metadata: Mapping[str, object], key: str) -> int | None:
    value = metadata.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _per_layer(value: object) -> list[int]:
    """A count given once for all layers or once per layer, as a list."""
    if isinstance(value, list):
        return [item for item in value if isinstance(item, int)]
    return [value] if isinstance(value, int) and not isinstance(value, bool) else []
