"""termllm's prompt and decode speed against llama.cpp's own llama-bench: the same model,
threads and flash-attention setting, the llama.cpp that llama-cpp-python vendors, in one run.
Issue targets: `termllm bench`'s prompt speed ÷ llama-bench pp512 ≥ 0.95, `ask`'s decode
speed ÷ tg128 ≥ 0.95, and `ask`'s process overhead (start to first answer byte, less the
model load and the prompt's evaluation) ≤ 0.25 s.

llama-bench is built once from the installed llama-cpp-python's sdist (pip's cache, or PyPI
through pip) into ~/.cache/termllm-bench (minutes on 2 cores), then reused. Without cmake, or
with --no-llama-bench, that comparison is skipped, saying so, and termllm is still measured.
llama-bench also runs with its own defaults, as the issue quotes it (its flash attention
"auto" turns it on; termllm's "auto" keeps it off for an f16 cache).

Runs alternate between the tools, so that machine noise hits both alike; medians.

Run: .venv/bin/python benchmarks/llama_bench.py [--runs 3] [--threads 2] [--tokens 128]
     [--flash-attn off] [-m PATH] [--no-llama-bench | --bench-binary PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from starter import ask_json, compile_as_installed, starter_model

CACHE = Path.home() / ".cache" / "termllm-bench"
PROMPT = "Write a long story about a lighthouse keeper and a storm."
PROMPT_TOKENS = 512
"""What `termllm bench` reads, and llama-bench's pp test."""
BENCH_TOKENS = 128
"""What `termllm bench` decodes, and llama-bench's tg test."""
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
)


def note(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def llama_bench_binary() -> tuple[Path | None, str]:
    """llama-bench built from the vendored llama.cpp (once), or None and why not."""
    version = metadata.version("llama-cpp-python")
    build = CACHE / f"build-{version}"
    binary = build / "bin" / "llama-bench"
    built = f"llama.cpp of llama-cpp-python {version}"
    if binary.exists():
        return binary, built
    if shutil.which("cmake") is None:
        return None, "cmake is not installed, so llama-bench cannot be built"
    source = CACHE / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    log = CACHE / f"build-{version}.log"
    try:
        if not source.is_dir():
            note(f"fetching the llama-cpp-python {version} sdist into {CACHE}")
            CACHE.mkdir(parents=True, exist_ok=True)
            pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
            subprocess.run(
                [*pip, f"llama-cpp-python=={version}", "-d", str(CACHE)],
                check=True,
                capture_output=True,
            )
            with tarfile.open(CACHE / f"llama_cpp_python-{version}.tar.gz") as archive:
                archive.extractall(CACHE, filter="data")
        note(f"building llama-bench once (minutes; log in {log})")
        with log.open("w") as output:
            for command in (
                ["cmake", "-S", str(source), "-B", str(build), *CMAKE_FLAGS],
                ["cmake", "--build", str(build), "--target", "llama-bench", "-j", "2"],
            ):
                subprocess.run(command, check=True, stdout=output, stderr=subprocess.STDOUT)
    except (OSError, subprocess.CalledProcessError, tarfile.TarError) as exc:
        return None, f"llama-bench could not be built ({exc}; see {log})"
    return binary, built


def llama_bench(binary: Path, model: Path, threads: int, flash: str) -> dict[str, float]:
    """pp512 and tg128 in tokens/s, one repetition (after llama-bench's own warm-up)."""
    tests = ["-p", str(PROMPT_TOKENS), "-n", str(BENCH_TOKENS), "-r", "1", "-o", "json"]
    completed = subprocess.run(
        [str(binary), "-m", str(model), "-t", str(threads), "-fa", flash, *tests],
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        last = completed.stderr.strip().splitlines()[-1:] or [f"exit status {completed.returncode}"]
        raise SystemExit(f"llama-bench failed: {last[0]}")
    speeds: dict[str, float] = {}
    for test in json.loads(completed.stdout):
        kind = "pp" if test["n_prompt"] else "tg"
        speeds[kind] = float(test["avg_ts"])
    return speeds


def termllm_bench(model: Path, threads: int, flash: str, env: dict[str, str]) -> dict[str, float]:
    options = ["--threads", str(threads), "--flash-attn", flash, "--history", "64", "--json"]
    completed = subprocess.run(
        [sys.executable, "-m", "termllm", "bench", "-m", str(model), *options],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    speed = json.loads(completed.stdout)["speed"]
    return {"pp": speed["prompt_tokens_per_s"], "tg": speed["decode_tokens_per_s"]}


def overhead_s(arguments: list[str], env: dict[str, str]) -> float:
    """Seconds from starting `termllm ask` to its first answer byte, less the model load and
    the time to first token it reports (as benchmarks/ask_speed.py measures it)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "termllm", "ask", "--stats", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert process.stdout is not None
    process.stdout.read(1)
    first_byte = time.perf_counter() - started
    _, err = process.communicate()
    stats = err.decode()
    load = re.search(r"load (\d+) ms", stats)
    ttft = re.search(r"first token (\d+) ms", stats)
    if process.returncode != 0 or load is None or ttft is None:
        raise SystemExit(f"ask failed: {stats.strip()}")
    return first_byte - (float(load.group(1)) + float(ttft.group(1))) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128, help="tokens `ask` decodes")
    parser.add_argument("--flash-attn", choices=("on", "off"), default="off")
    parser.add_argument("-m", "--model", type=Path, default=None)
    parser.add_argument("--no-llama-bench", action="store_true")
    parser.add_argument(
        "--bench-binary", type=Path, default=None, help="a llama-bench to run instead of building"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    compile_as_installed()
    model = args.model or starter_model()
    if args.no_llama_bench:
        binary, built = None, "--no-llama-bench"
    elif args.bench_binary is not None:
        binary, built = args.bench_binary, str(args.bench_binary)
    else:
        binary, built = llama_bench_binary()
    env = {**os.environ, "TERMLLM_HOME": tempfile.mkdtemp(prefix="termllm-llama-bench-")}
    ask = ["-m", str(model), "--temperature", "0", "--seed", "7", "--threads", str(args.threads)]
    ask += ["--flash-attn", args.flash_attn, "--max-tokens", str(args.tokens), "--no-save"]
    matching: list[dict[str, float]] = []
    defaults: list[dict[str, float]] = []
    bench: list[dict[str, float]] = []
    decode: list[float] = []
    overheads: list[float] = []
    for run in range(args.runs):
        if binary is not None:
            matching.append(llama_bench(binary, model, args.threads, args.flash_attn))
            defaults.append(llama_bench(binary, model, args.threads, "auto"))
        bench.append(termllm_bench(model, args.threads, args.flash_attn, env))
        decode.append(ask_json([*ask, PROMPT], env)["decode_tokens_per_s"])
        overheads.append(overhead_s([*ask, PROMPT], env))
        note(f"run {run + 1}: termllm bench {bench[-1]}, ask decode {decode[-1]:.1f} tok/s")

    def median(runs: list[dict[str, float]], kind: str) -> float:
        return statistics.median(run[kind] for run in runs)

    results: dict[str, Any] = {
        "model": model.name,
        "threads": args.threads,
        "flash_attention": args.flash_attn,
        "termllm_bench": {kind: median(bench, kind) for kind in ("pp", "tg")},
        "ask_decode": statistics.median(decode),
        "ask_overhead_s": statistics.median(overheads),
        "llama_bench": None,
    }
    if binary is not None:
        results["llama_bench"] = {
            "source": built,
            "matching": {kind: median(matching, kind) for kind in ("pp", "tg")},
            "defaults": {kind: median(defaults, kind) for kind in ("pp", "tg")},
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    report(results, built)


def report(results: dict[str, Any], built: str) -> None:
    ours, reference = results["termllm_bench"], results["llama_bench"]
    pp, tg = f"pp{PROMPT_TOKENS}", f"tg{BENCH_TOKENS}"
    print(
        f"model: {results['model']}, {results['threads']} threads,"
        f" flash attention {results['flash_attention']}"
    )
    if reference is None:
        print(f"llama-bench: skipped ({built})")
        versus = dict.fromkeys(("pp", "tg"), float("nan"))
    else:
        matching, defaults = reference["matching"], reference["defaults"]
        versus = matching
        print(
            f"llama-bench ({reference['source']}):"
            f" {pp} {matching['pp']:.1f} tok/s, {tg} {matching['tg']:.1f} tok/s; with its"
            f" defaults {pp} {defaults['pp']:.1f}, {tg} {defaults['tg']:.1f}"
        )
    print(
        f"termllm bench: prompt {ours['pp']:.1f} tok/s (÷ {pp}: {ours['pp'] / versus['pp']:.3f},"
        f" target ≥ 0.95), decode {ours['tg']:.1f} tok/s (÷ {tg}: {ours['tg'] / versus['tg']:.3f})"
    )
    print(
        f"termllm ask: decode {results['ask_decode']:.1f} tok/s"
        f" (÷ {tg}: {results['ask_decode'] / versus['tg']:.3f}, target ≥ 0.95)"
    )
    print(
        f"ask process overhead to first token: {results['ask_overhead_s']:.3f} s (target ≤ 0.25 s)"
    )


if __name__ == "__main__":
    main()
