"""Reading model summaries from GGUF headers: all parts of a split model, and a small cache of
the facts `ls` shows so listing never re-reads every header."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from termllm.errors import GGUFError, StorageError
from termllm.gguf.reader import read_header
from termllm.gguf.source import ByteSource, FileSource
from termllm.gguf.summary import ModelSummary, summarize


def summarize_sources(sources: Sequence[ByteSource]) -> ModelSummary:
    """One summary for a model; the parts of a split model add their tensors to the first's."""
    first = summarize(read_header(sources[0]))
    if len(sources) == 1:
        return first
    parameter_count, file_size = first.parameter_count, first.file_size
    layer_bytes = list(first.layer_bytes)
    non_layer_bytes = first.non_layer_bytes
    for source in sources[1:]:
        part = summarize(read_header(source))
        parameter_count += part.parameter_count
        file_size += part.file_size
        non_layer_bytes += part.non_layer_bytes
        for index, size in enumerate(part.layer_bytes):
            if index < len(layer_bytes):
                layer_bytes[index] += size
            else:
                layer_bytes.append(size)
    return replace(
        first,
        parameter_count=parameter_count,
        file_size=file_size,
        layer_bytes=tuple(layer_bytes),
        non_layer_bytes=non_layer_bytes,
    )


@dataclass(frozen=True)
class ModelFacts:
    """What `ls` shows beyond the file name; None where the header could not be read."""

    architecture: str | None
    parameter_count: int | None
    quant: str | None
    context_length: int | None = None
    """The context the model was trained on."""


UNREADABLE = ModelFacts(architecture=None, parameter_count=None, quant=None)
_FACT_NAMES = frozenset(item.name for item in fields(ModelFacts))


class FactsCache:
    """Facts per file, keyed by path, size and modification time, in one JSON file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._entries: dict[str, dict[str, object]] | None = None
        self._dirty = False

    def facts(self, paths: Sequence[Path]) -> ModelFacts:
        key = "|".join(_file_key(path) for path in paths)
        entries = self._load()
        cached = entries.get(key)
        # Entries written before a fact was added are read again, once.
        if isinstance(cached, dict) and cached.keys() >= _FACT_NAMES:
            return _facts_from_json(cached)
        try:
            summary = summarize_sources([FileSource(path) for path in paths])
        except (GGUFError, StorageError):
            return UNREADABLE
        found = ModelFacts(
            summary.architecture, summary.parameter_count, summary.quant, summary.context_length
        )
        entries[key] = asdict(found)
        self._dirty = True
        return found

    def save(self) -> None:
        if not self._dirty or self._entries is None:
            return
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(self._entries), encoding="utf-8")
            temporary.replace(self._path)
        except OSError:
            return  # A cache that cannot be written only costs a re-read next time.
        self._dirty = False

    def _load(self) -> dict[str, dict[str, object]]:
        if self._entries is None:
            try:
                loaded = json.loads(self._path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                loaded = {}
            self._entries = loaded if isinstance(loaded, dict) else {}
        return self._entries


def _file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def _facts_from_json(raw: dict[str, object]) -> ModelFacts:
    architecture, count, quant, context = (
        raw.get("architecture"),
        raw.get("parameter_count"),
        raw.get("quant"),
        raw.get("context_length"),
    )
    return ModelFacts(
        architecture=architecture if isinstance(architecture, str) else None,
        parameter_count=count if isinstance(count, int) else None,
        quant=quant if isinstance(quant, str) else None,
        context_length=context if isinstance(context, int) else None,
    )
