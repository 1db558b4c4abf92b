"""Copies of a GGUF model with chosen metadata values, for tests of hostile model files.

gguf's own reader parses the whole vocabulary in Python (seconds for the starter model); this
walks the header as raw bytes instead, so a copy costs about the time to write 100 MB. Tensor
offsets count from the start of the data, so a header of another length needs only new padding.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

U32, I32, F32, BOOL, STRING, ARRAY = 4, 5, 6, 7, 8, 9
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?"}
_SCALARS |= {10: "<Q", 11: "<q", 12: "<d"}
_ALIGNMENT = 32  # none of the models these tests copy sets general.alignment


@dataclass(frozen=True)
class Value:
    """A typed GGUF metadata value."""

    kind: int
    value: object
    item_kind: int = U32

    def encode(self) -> bytes:
        return struct.pack("<I", self.kind) + _payload(self.kind, self.value, self.item_kind)


def u32(value: int) -> Value:
    return Value(U32, value)


def text(value: str) -> Value:
    return Value(STRING, value)


def u32_array(values: Sequence[int]) -> Value:
    return Value(ARRAY, list(values), U32)


def rewrite(model: Path, output: Path, changes: Mapping[str, Value | None]) -> Path:
    """A copy of `model` at `output` where each key of `changes` is set to its value (in place,
    or added after the others) or, for None, removed."""
    with model.open("rb") as handle:
        head = handle.read(64 << 20)
        entries, tensor_count, infos_start = _entries(head)
        infos_end = _tensor_infos_end(head, infos_start, tensor_count)
        handle.seek(-(-infos_end // _ALIGNMENT) * _ALIGNMENT)
        data = handle.read()
    pending = dict(changes)
    kept: list[bytes] = []
    for key, raw in entries:
        if key in pending:
            change = pending.pop(key)
            if change is not None:
                kept.append(_string(key.encode()) + change.encode())
        else:
            kept.append(raw)
    kept += [_string(k.encode()) + v.encode() for k, v in pending.items() if v is not None]
    header = b"GGUF" + struct.pack("<IQQ", 3, tensor_count, len(kept)) + b"".join(kept)
    header += head[infos_start:infos_end]
    header += bytes(-len(header) % _ALIGNMENT)
    output.write_bytes(header + data)
    return output


def _payload(kind: int, value: object, item_kind: int) -> bytes:
    if kind in _SCALARS:
        return struct.pack(_SCALARS[kind], value)
    if kind == STRING:
        assert isinstance(value, str)
        return _string(value.encode())
    assert kind == ARRAY and isinstance(value, list)
    items = b"".join(_payload(item_kind, item, U32) for item in value)
    return struct.pack("<IQ", item_kind, len(value)) + items


def _string(raw: bytes) -> bytes:
    return struct.pack("<Q", len(raw)) + raw


def _entries(head: bytes) -> tuple[list[tuple[str, bytes]], int, int]:
    """The metadata entries as (key, raw bytes), the tensor count and where tensor infos start."""
    assert head[:4] == b"GGUF"
    tensor_count, kv_count = struct.unpack_from("<QQ", head, 8)
    position = 24
    entries = []
    for _ in range(kv_count):
        start = position
        key, position = _read_string(head, position)
        (kind,) = struct.unpack_from("<I", head, position)
        position = _skip_value(head, position + 4, kind)
        entries.append((key.decode(), head[start:position]))
    return entries, tensor_count, position


def _tensor_infos_end(head: bytes, position: int, count: int) -> int:
    for _ in range(count):
        _, position = _read_string(head, position)
        (dims,) = struct.unpack_from("<I", head, position)
        position += 4 + 8 * dims + 4 + 8
    return position


def _read_string(head: bytes, position: int) -> tuple[bytes, int]:
    (length,) = struct.unpack_from("<Q", head, position)
    return head[position + 8 : position + 8 + length], position + 8 + length


def _skip_value(head: bytes, position: int, kind: int) -> int:
    if kind in _SCALARS:
        return position + struct.calcsize(_SCALARS[kind])
    if kind == STRING:
        return _read_string(head, position)[1]
    item_kind, count = struct.unpack_from("<IQ", head, position)
    position += 12
    if item_kind in _SCALARS:
        return position + count * struct.calcsize(_SCALARS[item_kind])
    for _ in range(count):
        position = _skip_value(head, position, item_kind)
    return position
