"""`termllm bench` on the real starter model, kept small: its numbers are the user's to read,
so the test checks that each is measured, not how fast this machine is."""

from __future__ import annotations

import json
from pathlib import Path

from termllm_cli import termllm_process

SMALL = ("--ctx", "1024", "--history", "300", "--threads", "2")


def test_bench_json_reports_every_measurement(starter_model: Path) -> None:
    result = termllm_process("bench", "-m", "SmolLM2-135M-Instruct", *SMALL, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["model"] == "SmolLM2-135M-Instruct.Q4_1"
    assert report["n_ctx"] == 1024 and report["threads"] == 2
    assert report["kv_cache_type"] == "f16" and report["flash_attention"] is False
    speed = report["speed"]
    assert speed["prompt_tokens"] == 512 and speed["generated_tokens"] == 128
    assert speed["prompt_tokens_per_s"] > 0 and speed["decode_tokens_per_s"] > 0
    for name in ("load_ms", "fresh_ttft_ms", "reread_ttft_ms", "restored_ttft_ms"):
        assert report[name] > 0, name
    assert report["history_tokens"] >= 300
    assert report["state_bytes"] > 1_000_000
    assert "prompt speed" in result.err, "progress goes to stderr"


def test_bench_prints_a_table_and_leaves_no_state_or_history(
    starter_model: Path, isolated_env: Path
) -> None:
    result = termllm_process("bench", "-m", "SmolLM2-135M-Instruct", *SMALL)
    assert result.code == 0, result.err
    labels = [line.split("  ")[0] for line in result.out.splitlines()]
    assert labels[:6] == ["model", "placement", "KV cache", "load", "prompt", "decode"]
    assert "from saved state" in result.out
    assert not (isolated_env / "cache" / "kv").exists()
    assert termllm_process("history", "ls").out == ""


def test_bench_reports_a_quantized_cache_and_the_flash_attention_it_needs(
    starter_model: Path,
) -> None:
    result = termllm_process(
        "bench", "-m", "SmolLM2-135M-Instruct", *SMALL, "--kv-type", "q8_0", "--json"
    )
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["kv_cache_type"] == "q8_0" and report["flash_attention"] is True


def test_bench_with_an_unknown_model_is_one_line(starter_model: Path) -> None:
    result = termllm_process("bench", "-m", "no-such-model")
    assert result.code == 3
    assert result.err.count("\n") == 1
