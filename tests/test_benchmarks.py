"""Every benchmark still runs against the current code: each script once, at its smallest, in
its own process as a user runs it. Only that it finishes and reports is checked, never how fast:
timings belong to the benchmarks' own ratios (GUIDE §5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# One thread each: on a busy 2-core machine two llama.cpp threads wait on each other for
# seconds, and the smoke runs only need to get through.
THREADS = ("--threads", "1")
# A stuck benchmark fails here rather than at the test's own timeout, with its output.
RUN_TIMEOUT_S = 240


def run_benchmark(script: str, *args: str, tmp_path: Path) -> str:
    """Its stdout, once it exits 0."""
    env = os.environ.copy()
    # The scripts make temporary homes of their own; they go with this test's files.
    env["TMPDIR"] = str(tmp_path)
    completed = subprocess.run(
        [sys.executable, str(Path("benchmarks") / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=RUN_TIMEOUT_S,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def result_json(stdout: str) -> dict[str, Any]:
    report = json.loads(stdout)
    assert isinstance(report, dict)
    return report


def assert_lines(stdout: str, starts: list[str]) -> None:
    """One result line per entry, each beginning so."""
    lines = stdout.splitlines()
    assert len(lines) == len(starts), stdout
    for line, start in zip(lines, starts, strict=True):
        assert line.startswith(start), stdout


def test_startup(tmp_path: Path) -> None:
    out = run_benchmark("startup.py", "--runs", "1", tmp_path=tmp_path)

    assert_lines(
        out, ["command", "python -c pass", "termllm --help", "termllm ls ", "termllm ls --json"]
    )


def test_ask_speed(tmp_path: Path) -> None:
    out = run_benchmark("ask_speed.py", "--runs", "1", "--tokens", "4", *THREADS, tmp_path=tmp_path)

    assert_lines(
        out,
        [
            "model: ",
            "plain llama-cpp-python loop: ",
            "termllm ask --json: ",
            "ratio: ",
            "process overhead to first token: ",
            "reasoning parser, a model that does not think: ",
            "reasoning parser, <think> block then answer: ",
            "reasoning parser, harmony channels: ",
        ],
    )


CONTINUATION = (
    "--runs",
    "1",
    "--history",
    "100",
    "--turn-tokens",
    "4",
    "--answer-tokens",
    "4",
    *THREADS,
)


def test_continuation_json(tmp_path: Path) -> None:
    out = run_benchmark("continuation.py", *CONTINUATION, "--json", tmp_path=tmp_path)

    report = result_json(out)
    assert report["history_tokens"] >= 100
    assert set(report["new_process"]) == {"fresh_s", "restored_s", "reread_s", "ratio"}
    assert set(report["switch_back"]) == {"same_ms", "switched_ms", "ratio"}
    assert set(report["saving"]) == {"answer_s", "held_s", "save_s", "held_ratio", "ratio"}


def test_continuation_text(tmp_path: Path) -> None:
    out = run_benchmark("continuation.py", *CONTINUATION, tmp_path=tmp_path)

    assert_lines(
        out,
        [
            "history: ",
            "ask --cid, new process, first byte: ",
            "TUI switch back, first token: ",
            "saving state after a ",
        ],
    )


def test_tui_stream(tmp_path: Path) -> None:
    out = run_benchmark(
        "tui_stream.py",
        "--tokens",
        "50",
        "--paced-tokens",
        "20",
        "--rate",
        "1000",
        "--real-runs",
        "1",
        "--real-tokens",
        "4",
        *THREADS,
        "--json",
        tmp_path=tmp_path,
    )

    report = result_json(out)
    assert report["fast"]["tokens"] == 50
    assert "max_stall_ms" in report["fast"]
    assert report["paced"]["tokens"] == 20
    assert "ui_cpu_percent_of_core" in report["paced"]
    assert report["real"]["runs"] == 1
    assert set(report["real"]) >= {"ask_tokens_per_s", "tui_tokens_per_s", "ratio"}


def test_memory_estimate(tmp_path: Path) -> None:
    out = run_benchmark(
        "memory_estimate.py", "--contexts", "512", "--kv-types", "q8_0", "--json", tmp_path=tmp_path
    )

    (run,) = result_json(out)["runs"]
    assert (run["n_ctx"], run["kv_cache_type"], run["flash_attention"]) == (512, "q8_0", True)
    assert {"resident_ratio", "compute_ratio", "total_ratio"} <= set(run)


def test_llama_bench(tmp_path: Path) -> None:
    # Building llama-bench takes minutes: the smoke run measures termllm's side alone.
    out = run_benchmark(
        "llama_bench.py",
        "--runs",
        "1",
        "--tokens",
        "4",
        "--no-llama-bench",
        *THREADS,
        tmp_path=tmp_path,
    )

    assert_lines(
        out,
        [
            "model: ",
            "llama-bench: skipped (--no-llama-bench)",
            "termllm bench: prompt ",
            "termllm ask: decode ",
            "ask process overhead to first token: ",
        ],
    )


def test_restore_speed(tmp_path: Path) -> None:
    out = run_benchmark(
        "restore_speed.py",
        "--runs",
        "1",
        "--histories",
        "100,200",
        "--ctx",
        "1024",
        *THREADS,
        "--json",
        tmp_path=tmp_path,
    )

    report = result_json(out)
    assert report["fresh_ttft_ms"] > 0
    for length in ("100", "200"):
        continued = report["continued"][length]
        assert continued["cached_tokens"] >= int(length)
        assert set(continued) == {"prompt_tokens", "cached_tokens", "ttft_ms", "ratio", "target"}
    assert report["restore"]["history_tokens"] == 200
    assert report["restore"]["state_bytes"] > 0


def test_pipe_cache(tmp_path: Path) -> None:
    # Too short a file to be cached: the smoke run only needs to get through.
    out = run_benchmark(
        "pipe_cache.py", "--runs", "1", "--tokens", "100", *THREADS, tmp_path=tmp_path
    )

    assert_lines(
        out,
        [
            "piped file: ",
            "first question: ",
            "second question: ",
            "third question: ",
            "second, caches off: ",
            "ratio second / first: ",
        ],
    )


def test_pipe_order_json(tmp_path: Path) -> None:
    args = ("--tasks", "1", "--samples", "1", "--long", "100", "--max-tokens", "4", *THREADS)
    out = run_benchmark("pipe_order.py", *args, "--json", tmp_path=tmp_path)

    report = result_json(out)
    assert set(report) == {"short", "long"}
    for variant in report.values():
        assert set(variant) == {"question first", "document first"}
        assert all(score["answers"] == 1 for score in variant.values())
