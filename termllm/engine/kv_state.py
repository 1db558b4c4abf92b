"""Saving and restoring what llama.cpp has read of a conversation (sequence 0 of its KV cache).

The state of one sequence is llama.cpp's own serialization of the KV cells it uses, so its size
grows with the tokens read (about 23 KB a token for the starter model), not with n_ctx.
"""

from __future__ import annotations

import ctypes
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from termllm.engine.base import KvState
from termllm.setting_fields import MemoryOptions

if TYPE_CHECKING:
    from llama_cpp import Llama

SEQUENCE = 0
"""llama-cpp-python keeps its one conversation in sequence 0."""


def state_identity(model_path: Path, n_ctx: int, memory: MemoryOptions) -> str:
    """Everything a saved state depends on: the engine version (its serialization), the model
    file (same path, size and modification time), the context size and how the cache is kept:
    its type, and flash attention, which stores V untransposed."""
    import llama_cpp

    stat = model_path.stat()
    described = (
        f"llama-cpp-python {llama_cpp.__version__}|{model_path.resolve()}"
        f"|{stat.st_size}|{stat.st_mtime_ns}|n_ctx={n_ctx}"
        f"|kv={memory.kv_type}|flash_attn={memory.flash}"
    )
    # A file name may hold bytes that are not UTF-8: they are hashed as they are.
    return hashlib.sha256(described.encode("utf-8", "surrogateescape")).hexdigest()


def save(llama: Llama) -> KvState:
    import llama_cpp

    ctx, n_tokens = llama.ctx, llama.n_tokens
    memory = llama_cpp.llama_get_memory(ctx)
    if memory is not None:
        # Cells past n_tokens belong to a cut-back prefix that the next eval would drop anyway.
        llama_cpp.llama_memory_seq_rm(memory, SEQUENCE, n_tokens, -1)
    size = llama_cpp.llama_state_seq_get_size(ctx, SEQUENCE)
    data = bytearray(size)
    buffer = (ctypes.c_uint8 * size).from_buffer(data)
    written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, SEQUENCE)
    del buffer  # a bytearray with a live export cannot be resized or released
    tokens = tuple(int(token) for token in llama.input_ids[:n_tokens])
    return KvState(tokens, data[:written] if written < size else data)


def restore(llama: Llama, state: KvState) -> bool:
    """Hand `state.data` to llama.cpp where it lies (a file mapped into memory, read from disk
    but never copied: llama.cpp copies it once, into its cache)."""
    import llama_cpp

    n_tokens = len(state.tokens)
    if n_tokens >= llama.n_ctx() or not state.data:
        clear(llama)
        return False
    size = len(state.data)
    buffer = (ctypes.c_uint8 * size).from_buffer(state.data)
    try:
        accepted = llama_cpp.llama_state_seq_set_data(llama.ctx, buffer, size, SEQUENCE)
    finally:
        del buffer  # an export left alive would keep the mapping from being closed
    if accepted == 0:
        # A rejected state may have been read in part.
        clear(llama)
        return False
    # The restored cache has no logits for its last token: the decode loop always evaluates
    # the prompt's last token again before it samples.
    llama.input_ids[:n_tokens] = state.tokens
    llama.n_tokens = n_tokens
    return True


def clear(llama: Llama) -> None:
    import llama_cpp

    memory = llama_cpp.llama_get_memory(llama.ctx)
    if memory is not None:
        llama_cpp.llama_memory_seq_rm(memory, -1, -1, -1)
    llama.reset()  # type: ignore[no-untyped-call]  # unannotated in llama-cpp-python
