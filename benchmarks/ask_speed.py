"""`termllm ask` against a plain llama-cpp-python loop, same model, prompt and sampling, one run.

Prints decode tokens/s of both and their ratio (target ≥ 0.97), and termllm's process overhead:
the time from starting the process to the first answer byte, minus model load and prompt
evaluation (target ≤ 0.3 s). Runs alternate between the two so machine noise hits both alike.
Last, what the reasoning parser costs per token, as a share of one token's decode time
(target ≤ 1 %): for a model that does not think, and inside and after a reasoning block.

Run: .venv/bin/python benchmarks/ask_speed.py [--runs 5] [--tokens 128] [--threads 2] [-m PATH]
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
from pathlib import Path

from starter import ask_json, compile_as_installed, starter_model

from termllm.reasoning import HARMONY, THINK, parse_cost

PROMPT = "Write a long story about a lighthouse keeper and a storm."

# The baseline: the loop a llama-cpp-python user would write, timed the same way termllm times.
PLAIN_LOOP = """
import json, sys, time
from llama_cpp import Llama
path, tokens, threads, prompt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
llm = Llama(model_path=path, n_ctx=2048, n_threads=threads, n_threads_batch=threads,
            n_batch=512, verbose=False)
stream = llm.create_chat_completion(
    [{"role": "user", "content": prompt}], stream=True, temperature=0.0, top_p=0.95, top_k=40,
    min_p=0.05, repeat_penalty=1.1, seed=7, max_tokens=tokens)
count, first, last = 0, None, None
for chunk in stream:
    if chunk["choices"][0]["delta"].get("content"):
        count += 1
        last = time.perf_counter()
        first = first or last
print(json.dumps({"tokens": count, "decode_tokens_per_s": (count - 1) / (last - first)}))
"""


# About 2,000 tokens of prose (a token is about 4 characters, as the parser is fed).
_PROSE = "The keeper climbed the stairs as the storm rolled in from the sea. " * 120
PARSED_STREAMS = (
    ("a model that does not think", THINK, _PROSE),
    ("<think> block then answer", THINK, f"<think>\n{_PROSE}\n</think>\n\n{_PROSE}"),
    (
        "harmony channels",
        HARMONY,
        f"<|channel|>analysis<|message|>{_PROSE}<|end|><|start|>assistant<|channel|>final"
        f"<|message|>{_PROSE}",
    ),
)


def plain_loop(model: Path, tokens: int, threads: int) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, "-c", PLAIN_LOOP, str(model), str(tokens), str(threads), PROMPT],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def termllm_json(model: Path, tokens: int, threads: int, env: dict[str, str]) -> dict[str, float]:
    return ask_json(
        [
            "-m",
            str(model),
            "--temperature",
            "0",
            "--seed",
            "7",
            "--max-tokens",
            str(tokens),
            "--threads",
            str(threads),
            "--ctx",
            "2048",
            PROMPT,
        ],
        env,
    )


def termllm_overhead(model: Path, tokens: int, threads: int, env: dict[str, str]) -> float:
    """Seconds from process start to the first answer byte, less load and prompt evaluation."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "termllm",
            "ask",
            "-m",
            str(model),
            "--stats",
            "--temperature",
            "0",
            "--max-tokens",
            str(tokens),
            "--threads",
            str(threads),
            "--ctx",
            "2048",
            PROMPT,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    process.stdout.read(1)
    first_byte = time.perf_counter() - started
    _, err = process.communicate()
    stats = err.decode()
    load_ms = float(re.search(r"load (\d+) ms", stats).group(1))  # type: ignore[union-attr]
    ttft_ms = float(re.search(r"first token (\d+) ms", stats).group(1))  # type: ignore[union-attr]
    return first_byte - (load_ms + ttft_ms) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-m", "--model", type=Path, default=None)
    args = parser.parse_args()
    compile_as_installed()
    model = args.model or starter_model()
    env = os.environ.copy()
    env["TERMLLM_HOME"] = tempfile.mkdtemp(prefix="termllm-bench-")
    plain, ours, overheads = [], [], []
    for run in range(args.runs):
        plain.append(plain_loop(model, args.tokens, args.threads))
        ours.append(termllm_json(model, args.tokens, args.threads, env))
        overheads.append(termllm_overhead(model, args.tokens, args.threads, env))
        print(
            f"run {run + 1}: plain {plain[-1]['decode_tokens_per_s']:.1f} tok/s"
            f" ({plain[-1]['tokens']:.0f} tokens), termllm {ours[-1]['decode_tokens_per_s']:.1f}"
            f" tok/s ({ours[-1]['tokens']:.0f} tokens), overhead {overheads[-1]:.3f} s",
            file=sys.stderr,
        )
    plain_speed = statistics.median(r["decode_tokens_per_s"] for r in plain)
    our_speed = statistics.median(r["decode_tokens_per_s"] for r in ours)
    overhead = statistics.median(overheads)
    print(f"model: {model.name}, {args.tokens} tokens, {args.threads} threads, {args.runs} runs")
    print(f"plain llama-cpp-python loop: {plain_speed:.1f} tok/s (median)")
    print(f"termllm ask --json:          {our_speed:.1f} tok/s (median)")
    print(f"ratio: {our_speed / plain_speed:.3f} (target >= 0.97)")
    print(f"process overhead to first token: {overhead:.3f} s (target <= 0.3 s)")
    token_s = 1 / our_speed
    for label, fmt, text in PARSED_STREAMS:
        cost = min(parse_cost(fmt, text) for _ in range(5))
        print(
            f"reasoning parser, {label}: {cost * 1e6:.1f} µs per token,"
            f" {100 * cost / token_s:.3f} % of decode (target <= 1 %)"
        )


if __name__ == "__main__":
    main()
