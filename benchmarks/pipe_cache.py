"""Asking again about the same piped file: time to first answer byte of the second and third
questions, each in a new `termllm ask` process, against the first question's in the same run
(issue target: second / first ≤ 0.2). The first reads the whole file and keeps its state (the
prefix cache); the others restore it from disk and read only their own question. Also shown:
the second question with the caches off (`cache.*_mb = 0`), which reads the file again.

Time is measured from starting the process to the first byte of the answer on stdout (what the
user waits: start-up, loading the model, restoring and reading the prompt); `--stats` gives the
engine's own time to first token and the cached tokens. Each run starts from an empty cache in
a home of its own.

Run: .venv/bin/python benchmarks/pipe_cache.py [--runs 3] [--tokens 2000] [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from starter import starter_model

from termllm.app import build_services
from termllm.cli.ask_cmd import join_prompt
from termllm.config import load_config
from termllm.domain import Message, Role
from termllm.services.chat import LoadOptions

QUESTIONS = (
    "Which worker processed the most jobs?",
    "Were there any errors? Quote one line.",
    "How long did the slowest job take?",
)
GREEDY = ("--temperature", "0", "--seed", "7", "--max-tokens", "8", "--stats")
_STATS = re.compile(r"(\d+) prompt tokens \((\d+) cached\).*first token (\d+) ms")


def log_file(tokens: int) -> str:
    """A service log of at least `tokens` prompt tokens, as one would pipe it in."""
    with tempfile.TemporaryDirectory(prefix="termllm-pipe-cache-") as home:
        return _log_file(tokens, {**os.environ, "TERMLLM_HOME": home})


def _log_file(tokens: int, env: dict[str, str]) -> str:
    services = build_services(load_config(env))
    chat = services.chat
    model = chat.load(chat.choose_model(str(starter_model())), LoadOptions(threads=1))
    lines: list[str] = []
    try:
        while True:
            n = len(lines)
            level = "ERROR" if n % 29 == 17 else "INFO"
            lines.append(
                f"2024-05-01 10:{n // 60 % 60:02d}:{n % 60:02d} {level} worker {n % 7}"
                f" finished job {1000 + n} in {n * 37 % 900 + 20} ms"
            )
            text = "\n".join(lines)
            if model.count_prompt_tokens([Message(Role.USER, join_prompt("", text))]) >= tokens:
                return text
    finally:
        model.close()
        services.history.close()


def ask(question: str, text: str, env: dict[str, str], threads: int) -> dict[str, float]:
    command = [sys.executable, "-m", "termllm", "ask", "-m", str(starter_model()), *GREEDY]
    command += ["--threads", str(threads), question]
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(text.encode("utf-8"))
    process.stdin.close()
    process.stdin = None  # closed: communicate() must not flush it
    first = process.stdout.read(1)
    elapsed = time.perf_counter() - started
    _, err = process.communicate()
    stats = _STATS.search(err.decode(errors="replace"))
    if process.returncode != 0 or not first or stats is None:
        raise SystemExit(f"ask failed: {err.decode(errors='replace').strip()}")
    return {
        "first_byte_s": elapsed,
        "prompt_tokens": int(stats.group(1)),
        "cached_tokens": int(stats.group(2)),
        "ttft_ms": float(stats.group(3)),
    }


def one_run(text: str, threads: int) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="termllm-pipe-cache-") as home:
        env = {**os.environ, "TERMLLM_HOME": home}
        off = {**env, "TERMLLM_CACHE_RAM_MB": "0", "TERMLLM_CACHE_DISK_MB": "0"}
        first = ask(QUESTIONS[0], text, env, threads)
        second = ask(QUESTIONS[1], text, env, threads)
        third = ask(QUESTIONS[2], text, env, threads)
        reread = ask(QUESTIONS[1], text, off, threads)
    return {"first": first, "second": second, "third": third, "reread": reread}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    text = log_file(args.tokens)
    runs = [one_run(text, args.threads) for _ in range(args.runs)]
    results: dict[str, Any] = {}
    for name in ("first", "second", "third", "reread"):
        results[name] = {
            measure: statistics.median(run[name][measure] for run in runs)
            for measure in ("first_byte_s", "ttft_ms", "prompt_tokens", "cached_tokens")
        }
    first, second = results["first"], results["second"]
    results["ratio"] = second["first_byte_s"] / first["first_byte_s"]
    results["engine_ratio"] = second["ttft_ms"] / first["ttft_ms"]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"piped file: {first['prompt_tokens']:.0f} prompt tokens with the first question")
    for name, label in (
        ("first", "first question"),
        ("second", "second question"),
        ("third", "third question"),
        ("reread", "second, caches off"),
    ):
        row = results[name]
        print(
            f"{label}: first byte {row['first_byte_s']:.3f} s, engine first token"
            f" {row['ttft_ms']:.0f} ms, {row['cached_tokens']:.0f} cached"
        )
    print(
        f"ratio second / first: {results['ratio']:.3f} first byte,"
        f" {results['engine_ratio']:.3f} engine first token (target ≤ 0.2)"
    )


if __name__ == "__main__":
    main()
