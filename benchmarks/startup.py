"""How long `termllm --help` and `termllm ls` take, against a bare Python start in the same run.

Run: .venv/bin/python benchmarks/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from starter import compile_as_installed


def best_of(command: list[str], runs: int) -> tuple[float, float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        timings.append(time.perf_counter() - started)
    return min(timings), statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    compile_as_installed()
    python = sys.executable
    baseline = best_of([python, "-c", "pass"], runs)
    print(f"{'command':<22} {'best':>8} {'median':>8} {'minus bare python':>18}")
    print(f"{'python -c pass':<22} {baseline[0]:>7.3f}s {baseline[1]:>7.3f}s {'':>18}")
    for args in (["--help"], ["ls"], ["ls", "--json"]):
        best, median = best_of([python, "-m", "termllm", *args], runs)
        label = "termllm " + " ".join(args)
        print(f"{label:<22} {best:>7.3f}s {median:>7.3f}s {best - baseline[0]:>17.3f}s")


if __name__ == "__main__":
    main()
