"""What a GGUF file's name says: its quantization, whether it is one part of a split model."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Longest alternatives first, so "Q4_K_M" is not read as "Q4_K".
_QUANT_PATTERN = re.compile(
    r"(?<![A-Za-z0-9])("
    r"IQ[1-4]_(?:XXS|XS|S|M|NL|L)"
    r"|TQ[12]_0"
    r"|Q[2-8]_K_(?:XL|S|M|L)"
    r"|Q[2-8]_K"
    r"|Q[4-8]_[01]"
    r"|MXFP4"
    r"|BF16|F16|F32|FP16|FP32"
    r")(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_SPLIT_PATTERN = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.I)


@dataclass(frozen=True)
class SplitPart:
    stem: str
    index: int
    count: int


def quant_from_filename(filename: str) -> str | None:
    """The quantization named in a file name, upper-cased (`x.q4_k_m.gguf` → `Q4_K_M`)."""
    matches = _QUANT_PATTERN.findall(filename.rsplit("/", 1)[-1])
    return matches[-1].upper() if matches else None


def split_part(filename: str) -> SplitPart | None:
    """Split models are named `STEM-00001-of-00003.gguf`; None for a single-file model."""
    match = _SPLIT_PATTERN.match(filename.rsplit("/", 1)[-1])
    if not match:
        return None
    return SplitPart(match["stem"], int(match["index"]), int(match["count"]))


def is_gguf_name(filename: str) -> bool:
    return filename.lower().endswith(".gguf")


def model_stem(filename: str) -> str:
    """The name of the model a file belongs to, without folder, split suffix or extension."""
    base = filename.rsplit("/", 1)[-1]
    part = split_part(base)
    if part:
        return part.stem
    return base[: -len(".gguf")] if is_gguf_name(base) else base


def model_base_name(filename: str) -> str:
    """The stem without its quantization: `SmolLM2-1.7B.Q8_0.gguf` → `SmolLM2-1.7B`."""
    stem = model_stem(filename)
    matches = list(_QUANT_PATTERN.finditer(stem))
    if not matches:
        return stem
    last = matches[-1]
    return (stem[: last.start()].rstrip(".-_ ") + stem[last.end() :]).strip(".-_ ") or stem
