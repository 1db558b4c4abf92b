"""A file whose values pass the header checks but still trip a GGML_ASSERT while llama.cpp loads
it: the process ends with one line on stderr, not ggml's abort and its debugger backtrace on
stdout, and the question asked is kept."""

from __future__ import annotations

import json
from pathlib import Path

from hostile_gguf import rewrite, u32_array
from termllm_cli import termllm_process


def test_a_failed_ggml_assert_while_loading_is_one_line(
    starter_model: Path, tmp_path: Path
) -> None:
    # Two KV heads in the last layer where its weights hold three: llama.cpp's llama graph
    # multiplies mismatched tensors (GGML_ASSERT(a->ne[0] == b->ne[0]) in ggml.c).
    heads = u32_array([3] * 29 + [2])
    path = rewrite(starter_model, tmp_path / "heads.gguf", {"llama.attention.head_count_kv": heads})

    result = termllm_process("ask", "-m", str(path), "Hi")

    assert (result.code, result.out) == (1, "")
    assert result.err == (
        "termllm: cannot load heads.gguf: llama.cpp failed a check on the file"
        " (GGML_ASSERT(a->ne[0] == b->ne[0]) failed)\n"
    )
    listed = json.loads(termllm_process("history", "ls", "--json").out)
    assert [conversation["title"] for conversation in listed] == ["Hi"]
