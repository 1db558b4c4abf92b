"""Read a GGUF file's header: its metadata, its tensor table and where the tensor data starts.

Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): magic `GGUF`, u32 version,
u64 tensor count, u64 key/value count, the key/value pairs, one info record per tensor, padding
to `general.alignment`, then the tensor data. Versions 2 and 3 share this layout (version 1 used
32-bit counts); version 3 also allows big-endian files, which llama.cpp on little-endian machines
cannot load, so they are refused.
"""

from __future__ import annotations

import bisect
import math
import struct
from dataclasses import dataclass

from termllm.errors import GGUFError
from termllm.gguf.cursor import Cursor, quoted
from termllm.gguf.ggml_types import GGML_TYPES, ggml_type_name
from termllm.gguf.hparams import check_hyperparameters
from termllm.gguf.source import ByteSource

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
DEFAULT_ARRAY_LIMIT = 1024
MAX_DIMS = 4  # GGML_MAX_DIMS: ggml refuses tensors with more

_ARRAY = 9
_STRING = 8
_SCALARS: dict[int, struct.Struct] = {
    0: struct.Struct("<B"),
    1: struct.Struct("<b"),
    2: struct.Struct("<H"),
    3: struct.Struct("<h"),
    4: struct.Struct("<I"),
    5: struct.Struct("<i"),
    6: struct.Struct("<f"),
    7: struct.Struct("<?"),
    10: struct.Struct("<Q"),
    11: struct.Struct("<q"),
    12: struct.Struct("<d"),
}
# The fewest bytes an array element of each type can take, to bound counts read from the file.
_MIN_ITEM_SIZE = {_STRING: 8, _ARRAY: 12} | {kind: s.size for kind, s in _SCALARS.items()}
_MIN_KV_SIZE = 8 + 4 + 1  # key length, value type, one byte of value
_MIN_TENSOR_INFO_SIZE = 8 + 4 + 4 + 8  # name length, n_dims, type, offset
_MAX_ELEMENTS = 2**63 - 1  # ggml counts elements in int64
_MAX_NESTING = 8  # real files nest arrays once at most; a deeper file would exhaust the stack


@dataclass(frozen=True, slots=True)
class ArrayInfo:
    """A metadata array left out of the header to save time and memory: only its shape is kept."""

    value_type: int
    length: int


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor's table entry.

    `shape` is in ggml order, row length first (numpy's order reversed); `offset` counts from the
    header's `data_offset`.
    """

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int
    n_bytes: int

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def type_name(self) -> str:
        return ggml_type_name(self.ggml_type)


@dataclass(frozen=True, slots=True)
class GGUFHeader:
    """Everything before the tensor data.

    Metadata values are int, float, bool, str, list (arrays that were kept) or ArrayInfo (long
    arrays that were not).
    """

    version: int
    metadata: dict[str, object]
    tensors: tuple[TensorInfo, ...]
    data_offset: int
    file_size: int


def read_header(source: ByteSource, *, array_limit: int | None = DEFAULT_ARRAY_LIMIT) -> GGUFHeader:
    """Parse the header of the GGUF file behind `source`.

    Arrays longer than `array_limit` (the tokenizer's tokens, scores and merges) come back as
    `ArrayInfo`; per-layer arrays stay lists. `None` keeps every array. Raises GGUFError, naming
    the file, for anything that is not a complete, well-formed little-endian GGUF v2/v3 file,
    for a header past MAX_HEADER_BYTES, and for hyperparameters llama.cpp would abort on.
    """
    cursor = Cursor(source)
    version = _read_preamble(source, cursor)
    cursor.context = "the header"
    tensor_count = cursor.u64()
    kv_count = cursor.u64()
    cursor.check_fits(tensor_count, _MIN_TENSOR_INFO_SIZE, "a tensor count")
    cursor.check_fits(kv_count, _MIN_KV_SIZE, "a metadata count")

    metadata = _read_metadata(cursor, kv_count, array_limit)
    alignment = _alignment(cursor, metadata)
    raw = _read_tensor_infos(cursor, tensor_count, alignment)
    data_offset = -(-cursor.offset // alignment) * alignment
    tensors = _sized(raw, source.size - data_offset)
    _check_data_fits(source, tensors, data_offset)
    check_hyperparameters(source.label, metadata, (t.name for t in tensors))
    return GGUFHeader(version, metadata, tensors, data_offset, source.size)


def _read_preamble(source: ByteSource, cursor: Cursor) -> int:
    """Check the magic and the version, and return the version."""
    cursor.context = "the file preamble"
    magic = cursor.read(min(len(GGUF_MAGIC), cursor.size))
    if magic != GGUF_MAGIC:
        start = source.read_at(0, 32)
        if not start:
            raise GGUFError(f"{source.label}: not a GGUF file (it is empty)")
        if start.startswith(b"version https://git-lfs"):
            raise GGUFError(f"{source.label}: not a GGUF file (it is a Git LFS pointer to one)")
        raise GGUFError(f"{source.label}: not a GGUF file (starts with {start[:8]!r})")
    version = cursor.u32()
    if version in SUPPORTED_VERSIONS:
        return version
    swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
    if swapped in SUPPORTED_VERSIONS:
        raise GGUFError(
            f"{source.label}: big-endian GGUF file; llama.cpp here reads only little-endian ones"
        )
    if version == 1:
        raise GGUFError(
            f"{source.label}: GGUF version 1 is too old for llama.cpp; convert the model again"
        )
    raise GGUFError(f"{source.label}: unknown GGUF version {version} (this reader knows 2 and 3)")


def _read_metadata(cursor: Cursor, count: int, array_limit: int | None) -> dict[str, object]:
    metadata: dict[str, object] = {}
    for index in range(count):
        cursor.context = f"metadata entry {index}"
        key = cursor.name("a key")
        cursor.context = f"metadata value {quoted(key)}"
        if key in metadata:
            raise cursor.corrupt("a repeated key")
        metadata[key] = _read_value(cursor, cursor.u32(), array_limit)
    return metadata


def _read_value(cursor: Cursor, value_type: int, array_limit: int | None, depth: int = 0) -> object:
    scalar = _SCALARS.get(value_type)
    if scalar is not None:
        return cursor.unpack(scalar)[0]
    if value_type == _STRING:
        return cursor.string()
    if value_type != _ARRAY:
        raise cursor.corrupt(f"unknown value type {value_type}")
    if depth == _MAX_NESTING:
        raise cursor.corrupt(f"arrays nested over {_MAX_NESTING} deep")
    item_type = cursor.u32()
    length = cursor.u64()
    item_size = _MIN_ITEM_SIZE.get(item_type)
    if item_size is None:
        raise cursor.corrupt(f"unknown array item type {item_type}")
    cursor.check_fits(length, item_size, "an array length")
    if array_limit is not None and length > array_limit:
        _skip_items(cursor, item_type, length, depth)
        return ArrayInfo(item_type, length)
    return _read_items(cursor, item_type, length, array_limit, depth)


def _read_items(
    cursor: Cursor, item_type: int, length: int, array_limit: int | None, depth: int
) -> list[object]:
    scalar = _SCALARS.get(item_type)
    if scalar is not None:
        # One unpack for the whole run is far faster than one per item.
        layout = struct.Struct(f"<{length}{scalar.format[-1]}")
        return list(cursor.unpack(layout))
    if item_type == _STRING:
        return [cursor.string() for _ in range(length)]
    return [_read_value(cursor, _ARRAY, array_limit, depth + 1) for _ in range(length)]


def _skip_items(cursor: Cursor, item_type: int, length: int, depth: int) -> None:
    scalar = _SCALARS.get(item_type)
    if scalar is not None:
        cursor.skip(length * scalar.size)
    elif item_type == _STRING:
        cursor.skip_strings(length)
    else:
        for _ in range(length):
            _read_value(cursor, _ARRAY, 0, depth + 1)


def _alignment(cursor: Cursor, metadata: dict[str, object]) -> int:
    value = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    # bool is an int subclass, and a bool alignment is as wrong as a non-power of two.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value & (value - 1):
        cursor.context = "metadata value 'general.alignment'"
        shown = quoted(value) if isinstance(value, str) else repr(value)[:80]
        raise cursor.corrupt(f"alignment {shown} is not a power of two")
    return value


@dataclass(frozen=True, slots=True)
class _RawTensor:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int


def _read_tensor_infos(cursor: Cursor, count: int, alignment: int) -> list[_RawTensor]:
    tensors: list[_RawTensor] = []
    names: set[str] = set()
    for index in range(count):
        cursor.context = f"tensor info {index}"
        name = cursor.name("a tensor name")
        cursor.context = f"tensor info {quoted(name)}"
        if name in names:
            raise cursor.corrupt("a repeated tensor name")
        names.add(name)
        n_dims = cursor.u32()
        if n_dims > MAX_DIMS:
            raise cursor.corrupt(f"{n_dims} dimensions")
        shape = tuple(cursor.u64() for _ in range(n_dims))
        if math.prod(shape) > _MAX_ELEMENTS:
            raise cursor.corrupt(f"shape {shape} too large")
        ggml_type = cursor.u32()
        known = GGML_TYPES.get(ggml_type)
        if known and shape and shape[0] % known.block_size:
            raise cursor.corrupt(
                f"row of {shape[0]} not a multiple of the {known.name} block of {known.block_size}"
            )
        offset = cursor.u64()
        if offset % alignment:
            raise cursor.corrupt(f"data offset {offset} not aligned to {alignment}")
        tensors.append(_RawTensor(name, shape, ggml_type, offset))
    return tensors


def _sized(raw: list[_RawTensor], data_size: int) -> tuple[TensorInfo, ...]:
    """Attach each tensor's byte size.

    A type newer than our table has an unknown block geometry; its size is then taken as the gap
    to the next tensor's data (or to the end of the file), which includes alignment padding but
    is the best the file itself says.
    """
    ends = sorted({t.offset for t in raw} | {max(data_size, 0)})
    sized: list[TensorInfo] = []
    for tensor in raw:
        known = GGML_TYPES.get(tensor.ggml_type)
        if known:
            n_bytes = math.prod(tensor.shape) // known.block_size * known.type_size
        else:
            following = bisect.bisect_right(ends, tensor.offset)
            n_bytes = ends[following] - tensor.offset if following < len(ends) else 0
        sized.append(
            TensorInfo(tensor.name, tensor.shape, tensor.ggml_type, tensor.offset, n_bytes)
        )
    return tuple(sized)


def _check_data_fits(source: ByteSource, tensors: tuple[TensorInfo, ...], data_offset: int) -> None:
    """A cut-off download keeps a whole header; only the missing tensor bytes give it away."""
    if not tensors:
        return
    data_end = data_offset + max(t.offset + t.n_bytes for t in tensors)
    if data_end > source.size:
        raise GGUFError(
            f"{source.label}: truncated GGUF file (its tensors need {data_end:,} bytes but it has "
            f"{source.size:,}; the download may be incomplete)"
        )
