"""How true termllm's memory estimate is: the starter model loaded at three contexts with each KV
cache type, every load in a fresh process, against the estimate for that same load (issue
target: within 10 %). Linux only: it reads /proc/self/status.

What a load takes is measured in two parts, as this machine's CPU sees them:

- resident: the growth of the process's VmRSS across `LlamaEngine.load`, once what any first
  load costs a process is paid (importing llama.cpp's libraries and Jinja, initialising the
  backend), so that the growth is the model's. llama.cpp maps the
  weights with MAP_POPULATE, so they are resident (as file pages) when the load returns, and
  it clears the KV cache, so that is resident too; so are the vocabulary and the parsed header.
  The estimate's weights, KV cache and "other" are compared with it.
- compute: the compute buffers llama.cpp reserves (its log's "compute buffer size"). They are
  allocated at load but, on the CPU, only touched as the context fills (the attention scores
  grow with the tokens held), so no RSS reading right after the load sees them; on a GPU they
  are allocated whole. The estimate's compute is compared with them.

The total compares the estimate with both together. llama-cpp-python also allocates a logits
array of n_batch x n_vocab floats (96 MiB here) that termllm never writes (it keeps no logits
but the last): it stays virtual, is counted nowhere, and is not part of either figure.

Run: .venv/bin/python benchmarks/memory_estimate.py [--contexts 2048,8192,32768]
     [--kv-types f16,q8_0] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from starter import starter_model

MIB = 1024**2
TARGET = 0.10
_COMPUTE_LINE = re.compile(r"compute buffer size\s*=\s*([\d.]+) MiB")


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise SystemExit("no VmRSS in /proc/self/status: this benchmark needs Linux")


def warm_up() -> None:
    """Pay what the first load of a process costs whatever the model: the libraries and
    modules loading imports on first use, and llama.cpp's backend initialisation."""
    import jinja2.sandbox  # noqa: F401  # the chat template's sandbox
    import llama_cpp

    import termllm.engine.template_bounds  # noqa: F401

    llama_cpp.llama_backend_init()


def measure_one(model: Path, n_ctx: int, kv_type: str, threads: int) -> dict[str, Any]:
    """In this (fresh) process: load once, and what it took against what termllm estimated."""
    from termllm.engine.base import LoadRequest
    from termllm.engine.llama_backend import LlamaEngine
    from termllm.gguf.reader import read_header
    from termllm.gguf.source import FileSource
    from termllm.gguf.summary import estimate_memory, summarize
    from termllm.setting_fields import KvCacheType, MemoryOptions

    memory = MemoryOptions(KvCacheType(kv_type))
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "llama.log"
        request = LoadRequest(
            model,
            n_ctx=n_ctx,
            beyond_trained=True,
            gpu_layers=0,
            threads=threads,
            memory=memory,
            log_file=log,
        )
        engine = LlamaEngine()
        warm_up()
        before = rss_bytes()
        loaded = engine.load(request)
        resident = rss_bytes() - before
        compute = sum(float(size) * MIB for size in _COMPUTE_LINE.findall(log.read_text()))
        report = loaded.report
        loaded.close()
    estimate = estimate_memory(summarize(read_header(FileSource(model))), report.n_ctx, memory)
    return {
        "n_ctx": report.n_ctx,
        "kv_cache_type": kv_type,
        "flash_attention": report.flash_attention,
        "resident_bytes": resident,
        "estimate_resident_bytes": estimate.total_bytes - estimate.compute_bytes,
        "compute_bytes": int(compute),
        "estimate_compute_bytes": estimate.compute_bytes,
        "total_bytes": resident + int(compute),
        "estimate_total_bytes": estimate.total_bytes,
    }


def measure(model: Path, n_ctx: int, kv_type: str, threads: int) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, "--one", f"{n_ctx}:{kv_type}", "--threads", str(threads)],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    for part in ("resident", "compute", "total"):
        result[f"{part}_ratio"] = result[f"estimate_{part}_bytes"] / result[f"{part}_bytes"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contexts", default="2048,8192,32768")
    parser.add_argument("--kv-types", default="f16,q8_0")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # "N_CTX:KV": the measuring process
    args = parser.parse_args()
    model = starter_model()
    if args.one:
        n_ctx, kv_type = args.one.split(":")
        print(json.dumps(measure_one(model, int(n_ctx), kv_type, args.threads)))
        return
    runs = [
        measure(model, int(n_ctx), kv_type, args.threads)
        for n_ctx in args.contexts.split(",")
        for kv_type in args.kv_types.split(",")
    ]
    worst = max(abs(run["total_ratio"] - 1) for run in runs)
    if args.json:
        print(json.dumps({"model": model.name, "runs": runs, "worst_total_error": worst}))
        return
    print(f"model: {model.name} (a context past its trained one is kept, as --force-ctx does)")
    parts = ("resident", "compute", "total")
    print(
        f"{'context':>8} {'kv':>5} {'flash':>5}"
        + "".join(f" {part:>9} {'estimate':>9} {'ratio':>5}" for part in parts)
    )
    for run in runs:
        flash = "on" if run["flash_attention"] else "off"
        line = f"{run['n_ctx']:>8,} {run['kv_cache_type']:>5} {flash:>5}"
        for part in parts:
            measured, estimated = run[f"{part}_bytes"] / MIB, run[f"estimate_{part}_bytes"] / MIB
            line += f" {measured:>5.0f} MiB {estimated:>5.0f} MiB {run[f'{part}_ratio']:>5.3f}"
        print(line)
    verdict = "met" if worst <= TARGET else "missed"
    print(f"worst total error: {worst:.1%} (target within {TARGET:.0%}: {verdict})")


if __name__ == "__main__":
    main()
