"""Continuing a long saved conversation in a new process: the model's own time to first token
(`ask --json`'s, restoring the saved state included) against a fresh short prompt's, in one run
(issue targets: 1,500 tokens of history within 1.2 times, 8,000 within 1.5 times).

Then, in this process, where restoring the longest history's state goes: mapping and checking
its file, and llama.cpp taking it in, against copying as many bytes from memory to memory (the
speed of memory), and against reading the file as termllm did before (into fresh memory, with a
CRC-32 of it).

Every `ask` runs with the same context (large enough for the longest history), alternating
between the fresh prompt and the continuations so that machine noise hits them alike.

Run: .venv/bin/python benchmarks/restore_speed.py [--runs 5] [--threads 2]
     [--histories 1500,8000] [--ctx 8192] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from continuation import FRESH_PROMPT, GREEDY, MODEL, seed_conversation

from termllm.app import Services, build_services
from termllm.config import load_config
from termllm.services.chat import LoadOptions
from termllm.services.state_files import StateFiles

TARGETS = {1500: 1.2, 8000: 1.5}
"""The issue's ratio for each history length; other lengths are measured without one."""


def ask_timings(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """`termllm ask --json` in a new process: its timings and usage."""
    completed = subprocess.run(
        [sys.executable, "-m", "termllm", "ask", "--json", "-m", MODEL, *GREEDY, *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    if completed.returncode != 0:
        raise SystemExit(f"ask failed: {completed.stderr.strip()}")
    answer = json.loads(completed.stdout)
    return {**answer["timings"], **answer["usage"]}


def new_process(
    conversations: dict[int, str], runs: int, common: list[str], env: dict[str, str]
) -> dict[str, Any]:
    for cid in conversations.values():
        # Reads the history once and saves the state the measured runs start from.
        ask_timings([*common, "--cid", cid, "What did we talk about first?"], env)
    fresh: list[float] = []
    continued: dict[int, list[dict[str, Any]]] = {length: [] for length in conversations}
    for _ in range(runs):
        fresh.append(ask_timings([*common, "--no-save", FRESH_PROMPT], env)["ttft_ms"])
        for length, cid in conversations.items():
            question = [*common, "--no-save", "--cid", cid, "And what came next?"]
            continued[length].append(ask_timings(question, env))
    fresh_ms = statistics.median(fresh)
    results: dict[str, Any] = {"fresh_ttft_ms": fresh_ms, "continued": {}}
    for length, timings in continued.items():
        ttft = statistics.median(t["ttft_ms"] for t in timings)
        results["continued"][str(length)] = {
            "prompt_tokens": timings[-1]["prompt_tokens"],
            "cached_tokens": timings[-1]["cached_tokens"],
            "ttft_ms": ttft,
            "ratio": ttft / fresh_ms,
            "target": TARGETS.get(length),
        }
    return results


def restore_parts(
    services: Services, cid: str, runs: int, load: LoadOptions, kv_dir: Path
) -> dict[str, float]:
    """Medians over `runs` restores of the state saved for `cid`, in milliseconds."""
    chat = services.chat
    loaded = chat.load(chat.choose_model(MODEL), load)
    files = StateFiles(kv_dir, 1 << 40, kv_dir / "benchmark.log")
    identity = loaded.state_identity
    path = files.path(cid, identity)
    read_ms, restore_ms, copy_ms, before_ms = [], [], [], []
    try:
        for _ in range(runs):
            loaded.clear_state()
            started = time.perf_counter()
            state = files.read(cid, identity)
            read = time.perf_counter()
            if state is None or not loaded.restore_state(state):
                raise SystemExit(f"the state saved for {cid} was not restored")
            restored = time.perf_counter()
            read_ms.append((read - started) * 1000)
            restore_ms.append((restored - read) * 1000)
            # The speed of memory: the same bytes copied into memory already in use (a
            # bytearray is zero-filled when made; a memoryview copies without a go-between).
            target = memoryview(bytearray(len(state.data)))
            started = time.perf_counter()
            target[:] = state.data
            copy_ms.append((time.perf_counter() - started) * 1000)
            del target, state
            started = time.perf_counter()
            with path.open("rb") as handle:
                before = bytearray(path.stat().st_size)
                handle.readinto(before)
                zlib.crc32(before)
            before_ms.append((time.perf_counter() - started) * 1000)
            del before
    finally:
        loaded.close()
    return {
        "state_bytes": path.stat().st_size,
        "read_ms": statistics.median(read_ms),
        "restore_ms": statistics.median(restore_ms),
        "memory_copy_ms": statistics.median(copy_ms),
        "read_as_before_ms": statistics.median(before_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--histories", default="1500,8000", help="history lengths, in tokens")
    parser.add_argument("--ctx", type=int, default=8192, help="context of every run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    lengths = [int(length) for length in args.histories.split(",")]
    with tempfile.TemporaryDirectory(prefix="termllm-restore-") as home:
        env = {**os.environ, "TERMLLM_HOME": home, "TERMLLM_MODELS_THREADS": str(args.threads)}
        config = load_config(env)
        services = build_services(config)
        conversations = {
            length: seed_conversation(services, length, args.threads, {})[0] for length in lengths
        }
        common = ["--threads", str(args.threads), "--ctx", str(args.ctx), "--max-tokens", "8"]
        results = new_process(conversations, args.runs, common, env)
        load = LoadOptions(n_ctx=args.ctx, threads=args.threads)
        longest = max(lengths)
        parts = restore_parts(
            services, conversations[longest], args.runs, load, config.paths.kv_state_dir
        )
        results["restore"] = {"history_tokens": longest, **parts}
        services.history.close()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"fresh prompt, first token: {results['fresh_ttft_ms']:.0f} ms (median)")
    for length, measured in results["continued"].items():
        target = measured["target"]
        verdict = f"target ≤ {target}" if target is not None else "no target"
        print(
            f"continuing {length} tokens ({measured['cached_tokens']} of"
            f" {measured['prompt_tokens']} restored), first token: {measured['ttft_ms']:.0f} ms"
            f" → ratio {measured['ratio']:.2f} ({verdict})"
        )
    restore = results["restore"]
    print(
        f"restoring {restore['history_tokens']} tokens ({restore['state_bytes'] / 1e6:.0f} MB):"
        f" map and check {restore['read_ms']:.1f} ms, llama.cpp {restore['restore_ms']:.1f} ms;"
        f" a memory copy of it {restore['memory_copy_ms']:.1f} ms"
        f" → ratio {(restore['read_ms'] + restore['restore_ms']) / restore['memory_copy_ms']:.1f};"
        f" reading it as before {restore['read_as_before_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
