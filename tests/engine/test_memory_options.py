"""The KV cache type and flash attention through a real load of the starter model: what `ask`
says it loaded, and saved states that only ever come back into a cache kept the same way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from termllm_cli import termllm

from termllm.engine import kv_state
from termllm.setting_fields import FlashAttention, KvCacheType, MemoryOptions

Capsys = pytest.CaptureFixture[str]
# One thread: on a busy 2-core machine two llama.cpp threads wait on each other for seconds.
GREEDY = ("--temperature", "0", "--seed", "3", "--max-tokens", "8", "--threads", "1")


def ask_json(capsys: Capsys, *args: str) -> dict[str, Any]:
    result = termllm(capsys, "ask", *GREEDY, "--json", *args)
    assert result.code == 0, result.err
    answer: dict[str, Any] = json.loads(result.out)
    return answer


def test_ask_loads_a_q8_0_cache_and_says_so(capsys: Capsys, starter_model: Path) -> None:
    result = termllm(capsys, "ask", *GREEDY, "--no-save", "-v", "--kv-type", "q8_0", "Hi there")

    assert result.code == 0, result.err
    assert result.out.strip(), "an answer came"
    # auto turns flash attention on: llama.cpp reads a quantized V cache only that way.
    assert "KV cache q8_0 · flash attention on" in result.err
    plain = termllm(capsys, "ask", *GREEDY, "--no-save", "-v", "Hi there")
    assert "KV cache f16 · flash attention off" in plain.err


def test_flash_attention_can_be_asked_for_an_f16_cache(capsys: Capsys, starter_model: Path) -> None:
    result = termllm(capsys, "ask", *GREEDY, "--no-save", "-v", "--flash-attn", "on", "Hi")

    assert result.code == 0, result.err
    assert "KV cache f16 · flash attention on" in result.err


def test_a_state_saved_with_f16_is_not_restored_into_a_q8_0_cache(
    capsys: Capsys, starter_model: Path
) -> None:
    first = ask_json(capsys, "Name three colours.")
    cid = first["conversation_id"]

    quantized = ask_json(capsys, "--cid", cid, "--no-save", "--kv-type", "q8_0", "And a fourth?")
    same = ask_json(capsys, "--cid", cid, "--no-save", "And a fourth?")

    assert quantized["timings"]["cached_tokens"] == 0
    assert quantized["load"]["kv_cache_type"] == "q8_0" and quantized["load"]["flash_attention"]
    assert same["load"]["kv_cache_type"] == "f16" and not same["load"]["flash_attention"]
    assert same["timings"]["cached_tokens"] > 0, "the f16 state is still there for f16"


@pytest.mark.parametrize(
    "other",
    [
        MemoryOptions(KvCacheType.Q8_0),
        MemoryOptions(KvCacheType.Q4_0),
        MemoryOptions(KvCacheType.F16, FlashAttention.ON),
    ],
)
def test_the_state_identity_holds_the_cache_type_and_flash_attention(
    starter_model: Path, other: MemoryOptions
) -> None:
    f16 = kv_state.state_identity(starter_model, 4096, MemoryOptions())
    assert kv_state.state_identity(starter_model, 4096, other) != f16
    # auto and off are the same cache for f16.
    off = MemoryOptions(flash_attention=FlashAttention.OFF)
    assert kv_state.state_identity(starter_model, 4096, off) == f16


def test_doctor_and_info_plan_with_the_kv_type(capsys: Capsys, starter_model: Path) -> None:
    ref = "smollm2-135m-instruct"
    doctor = termllm(capsys, "doctor", "-m", ref, "--kv-type", "q8_0", "--json")
    assert doctor.code == 0, doctor.err
    plan = json.loads(doctor.out)["model_plan"]
    assert (plan["kv_cache_type"], plan["flash_attention"]) == ("q8_0", True)
    text = termllm(capsys, "doctor", "-m", ref, "--kv-type", "q8_0").out
    assert "q8_0 · flash attention on (auto: a quantized KV cache needs it)" in text

    memory = {}
    for kv_type in ("f16", "q4_0"):
        info = termllm(capsys, "info", ref, "--kv-type", kv_type, "--json")
        assert info.code == 0, info.err
        memory[kv_type] = json.loads(info.out)["memory"]
    assert memory["q4_0"]["kv_cache_type"] == "q4_0" and memory["q4_0"]["flash_attention"]
    # Bytes a block of 32 elements, against f16's 64: 18 in q4_0, 34 in q8_0.
    f16_kv = memory["f16"]["kv_cache_bytes"]
    assert memory["q4_0"]["kv_cache_bytes"] == f16_kv * 18 // 64
    assert plan["memory"]["kv_cache_bytes"] == f16_kv * 34 // 64
    assert plan["memory"]["weights_bytes"] == memory["f16"]["weights_bytes"]
