from __future__ import annotations

import contextlib
import random
import struct
from collections.abc import Callable
from pathlib import Path

import gguf
import pytest

from termllm.errors import GGUFError
from termllm.gguf.ggml_types import GGML_TYPES
from termllm.gguf.reader import ArrayInfo, GGUFHeader, read_header
from termllm.gguf.source import FileSource

STRING, ARRAY, U32, I32, F32 = 8, 9, 4, 5, 6
VOCAB = 1100  # the tiny model's


class MemorySource:
    """A ByteSource over bytes in memory, for files built byte by byte."""

    def __init__(self, data: bytes, label: str = "mem://model.gguf") -> None:
        self._data = data
        self._label = label

    @property
    def size(self) -> int:
        return len(self._data)

    @property
    def label(self) -> str:
        return self._label

    def read_at(self, offset: int, length: int) -> bytes:
        return self._data[offset : offset + length]


class CountingSource(FileSource):
    """A local file that records every read, as a remote source would pay for it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads: list[tuple[int, int]] = []

    def read_at(self, offset: int, length: int) -> bytes:
        data = super().read_at(offset, length)
        self.reads.append((offset, len(data)))
        return data


def gguf_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def gguf_file(*, version: int = 3, tensors: int = 0, kvs: int = 1, body: bytes = b"") -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, tensors, kvs) + body


def header_of(path: Path, **options: int | None) -> GGUFHeader:
    return read_header(FileSource(path), **options)


def error_of(source: MemorySource | FileSource) -> str:
    with pytest.raises(GGUFError) as caught:
        read_header(source)
    message = str(caught.value)
    assert message.startswith(f"{source.label}: ")
    assert "\n" not in message
    return message


# The tiny model, written by ggml's reference writer


def test_tiny_model_tensor_table_matches_what_was_written(
    tiny_model: Path, tiny_tensors: dict[str, tuple[tuple[int, ...], int, int]]
) -> None:
    header = header_of(tiny_model)

    assert header.version == 3
    assert header.file_size == tiny_model.stat().st_size
    assert header.data_offset % 32 == 0
    found = {t.name: (t.shape, t.ggml_type, t.n_bytes) for t in header.tensors}
    assert found == tiny_tensors
    assert [t.name for t in header.tensors] == list(tiny_tensors)


def test_tensors_lie_back_to_back_with_alignment_padding(tiny_model: Path) -> None:
    header = header_of(tiny_model)

    offset = 0
    for tensor in header.tensors:
        assert tensor.offset == offset
        offset = -(-(tensor.offset + tensor.n_bytes) // 32) * 32
    assert header.data_offset + offset == header.file_size


def test_tiny_model_metadata(tiny_model: Path) -> None:
    metadata = header_of(tiny_model).metadata

    assert metadata["general.architecture"] == "llama"
    assert metadata["general.name"] == "Tiny Llama"
    assert metadata["general.file_type"] == 15
    assert metadata["llama.context_length"] == 2048
    assert metadata["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-5)
    assert str(metadata["tokenizer.chat_template"]).startswith("{% for message in messages %}")
    assert metadata["tokenizer.ggml.tokens"] == ArrayInfo(STRING, VOCAB)
    assert metadata["tokenizer.ggml.scores"] == ArrayInfo(F32, VOCAB)
    assert metadata["tokenizer.ggml.token_type"] == ArrayInfo(I32, VOCAB)


def test_every_value_type_and_nested_arrays(make_model: Callable[..., Path]) -> None:
    def customize(writer: gguf.GGUFWriter) -> None:
        writer.add_uint8("t.u8", 200)
        writer.add_int8("t.i8", -5)
        writer.add_uint16("t.u16", 60_000)
        writer.add_int16("t.i16", -30_000)
        writer.add_uint32("t.u32", 4_000_000_000)
        writer.add_int32("t.i32", -2_000_000_000)
        writer.add_float32("t.f32", 0.5)
        writer.add_uint64("t.u64", 2**40)
        writer.add_int64("t.i64", -(2**40))
        writer.add_float64("t.f64", 1 / 3)
        writer.add_bool("t.bool", True)
        writer.add_string("t.unicode", "héllo ✓")
        writer.add_array("t.strings", ["a", "bc"])
        writer.add_array("t.floats", [0.5, 1.5])
        writer.add_array("t.bools", [True, False])
        writer.add_array("t.nested", [[1, 2], [3]])
        writer.add_array("t.nested_strings", [["x"], ["y", "z"]])
        writer.add_array("t.long_nested", [[i, i] for i in range(VOCAB)])
        writer.add_array("t.after", ["still in step"])

    metadata = header_of(make_model(customize=customize)).metadata

    assert {k: v for k, v in metadata.items() if k.startswith("t.")} == {
        "t.u8": 200,
        "t.i8": -5,
        "t.u16": 60_000,
        "t.i16": -30_000,
        "t.u32": 4_000_000_000,
        "t.i32": -2_000_000_000,
        "t.f32": 0.5,
        "t.u64": 2**40,
        "t.i64": -(2**40),
        "t.f64": 1 / 3,
        "t.bool": True,
        "t.unicode": "héllo ✓",
        "t.strings": ["a", "bc"],
        "t.floats": [0.5, 1.5],
        "t.bools": [True, False],
        "t.nested": [[1, 2], [3]],
        "t.nested_strings": [["x"], ["y", "z"]],
        "t.long_nested": ArrayInfo(ARRAY, VOCAB),
        "t.after": ["still in step"],
    }


def test_array_limit_none_keeps_every_array(tiny_model: Path) -> None:
    metadata = header_of(tiny_model, array_limit=None).metadata

    tokens = metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, list)
    assert len(tokens) == VOCAB
    assert tokens[:3] == ["tok0", "tok1", "tok2"]
    assert tokens[5] == "\ufffd\ufffd"  # not UTF-8 on its own: replaced, not a crash
    assert metadata["tokenizer.ggml.scores"] == [float(-i) for i in range(VOCAB)]


def test_custom_alignment_moves_the_data(
    make_model: Callable[..., Path], tiny_tensors: dict[str, tuple[tuple[int, ...], int, int]]
) -> None:
    path = make_model("aligned.gguf", customize=lambda writer: writer.add_custom_alignment(64))
    header = header_of(path)

    assert header.metadata["general.alignment"] == 64
    assert header.data_offset % 64 == 0
    assert all(t.offset % 64 == 0 for t in header.tensors)
    assert {t.name: (t.shape, t.ggml_type, t.n_bytes) for t in header.tensors} == tiny_tensors


def test_version_2_files_read_like_version_3(tiny_model: Path) -> None:
    data = bytearray(tiny_model.read_bytes())
    data[4:8] = struct.pack("<I", 2)
    header = read_header(MemorySource(bytes(data)))

    assert header.version == 2
    assert header.tensors == header_of(tiny_model).tensors


def same_tensors(mine: GGUFHeader, reference: gguf.GGUFReader) -> None:
    assert mine.data_offset == reference.data_offset
    assert [
        (t.name, t.shape, t.ggml_type, mine.data_offset + t.offset, t.n_bytes) for t in mine.tensors
    ] == [
        (t.name, tuple(int(d) for d in t.shape), int(t.tensor_type), t.data_offset, t.n_bytes)
        for t in reference.tensors
    ]


def test_tiny_model_agrees_with_the_reference_reader(tiny_model: Path) -> None:
    mine = header_of(tiny_model)
    reference = gguf.GGUFReader(tiny_model)

    same_tensors(mine, reference)
    assert list(mine.metadata) == [k for k in reference.fields if not k.startswith("GGUF.")]


def test_starter_model_agrees_with_the_reference_reader(starter_model: Path) -> None:
    mine = header_of(starter_model, array_limit=None)
    reference = gguf.GGUFReader(starter_model)

    same_tensors(mine, reference)
    expected = {
        key: field.contents()
        for key, field in reference.fields.items()
        if not key.startswith("GGUF.")
    }
    assert mine.metadata == expected


def test_type_table_matches_ggml() -> None:
    for number, (block_size, type_size) in gguf.GGML_QUANT_SIZES.items():
        known = GGML_TYPES[int(number)]
        assert (known.name, known.block_size, known.type_size) == (
            number.name,
            block_size,
            type_size,
        )


def test_unknown_tensor_type_is_sized_by_the_gap_to_the_next_tensor(
    tiny_model: Path,
) -> None:
    header = header_of(tiny_model)
    data = bytearray(tiny_model.read_bytes())
    first_type_at = data.index(b"token_embd.weight") + len("token_embd.weight") + 4 + 2 * 8
    assert struct.unpack_from("<I", data, first_type_at) == (1,)  # F16
    struct.pack_into("<I", data, first_type_at, 250)

    patched = read_header(MemorySource(bytes(data)))

    first, second = patched.tensors[:2]
    assert first.ggml_type == 250
    assert first.type_name == "type 250"
    assert first.n_bytes == second.offset
    assert patched.tensors[1:] == header.tensors[1:]


# The real starter model


def test_starter_model_header(starter_model: Path) -> None:
    header = header_of(starter_model)

    assert header.version == 3
    assert header.metadata["general.architecture"] == "llama"
    assert header.metadata["llama.block_count"] == 30
    assert header.metadata["tokenizer.ggml.tokens"] == ArrayInfo(STRING, 49152)
    assert len(header.tensors) == 272
    assert 134e6 < sum(t.n_elements for t in header.tensors) < 136e6
    last_end = max(t.offset + t.n_bytes for t in header.tensors)
    assert header.data_offset + last_end == header.file_size


def test_starter_model_header_costs_few_small_reads(starter_model: Path) -> None:
    source = CountingSource(starter_model)
    header = read_header(source)

    assert len(source.reads) <= 5
    assert sum(length for _, length in source.reads) < 10 * 1024 * 1024
    assert header.data_offset < 2 * 1024 * 1024


def test_small_header_costs_one_read(tiny_model: Path) -> None:
    source = CountingSource(tiny_model)
    read_header(source)

    assert source.reads == [(0, 256 * 1024)]


# Not GGUF, truncated, corrupt


def test_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04" + bytes(100))

    message = error_of(FileSource(path))

    assert "not a GGUF file (starts with b'PK\\x03\\x04" in message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")

    assert error_of(FileSource(path)).endswith("not a GGUF file (it is empty)")


def test_git_lfs_pointer() -> None:
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 98362432\n"

    assert "Git LFS pointer" in error_of(MemorySource(pointer))


def test_truncated_in_the_middle_of_the_metadata(tiny_model: Path) -> None:
    data = tiny_model.read_bytes()
    cut = data.index(b"tokenizer.ggml.tokens") + 500

    message = error_of(MemorySource(data[:cut]))

    assert f"truncated GGUF file (it ends at byte {cut} in metadata value" in message
    assert "'tokenizer.ggml.tokens'" in message


def test_every_cut_through_the_header_is_a_clean_error(tiny_model: Path) -> None:
    data = tiny_model.read_bytes()
    data_offset = header_of(tiny_model).data_offset

    for cut in [*range(64), *range(64, data_offset + 100, 211)]:
        with pytest.raises(GGUFError):
            read_header(MemorySource(data[:cut]))


def test_truncated_tensor_data(tmp_path: Path, starter_model: Path) -> None:
    half = tmp_path / "half.gguf"
    with starter_model.open("rb") as whole, half.open("wb") as cut:
        cut.write(whole.read(starter_model.stat().st_size // 2))

    message = error_of(FileSource(half))

    assert "truncated GGUF file (its tensors need 98,362,432 bytes but it has 49,181,216" in message


def test_one_missing_byte_of_tensor_data(tiny_model: Path) -> None:
    header = header_of(tiny_model)
    end = header.data_offset + max(t.offset + t.n_bytes for t in header.tensors)
    data = tiny_model.read_bytes()

    read_header(MemorySource(data[:end]))
    assert "truncated GGUF file" in error_of(MemorySource(data[: end - 1]))


def test_absurd_string_length() -> None:
    source = MemorySource(gguf_file(body=struct.pack("<Q", 2**62) + bytes(64)))

    message = error_of(source)

    assert "corrupt GGUF file (a key of 4,611,686,018,427,387,904 bytes in" in message
    assert "metadata entry 0" in message


def test_absurd_array_length() -> None:
    value = struct.pack("<IIQ", ARRAY, STRING, 2**40)
    source = MemorySource(gguf_file(body=gguf_string("general.tags") + value))

    assert "corrupt GGUF file (an array length of 1,099,511,627,776 in" in error_of(source)


def test_absurd_tensor_count() -> None:
    source = MemorySource(gguf_file(tensors=2**60, kvs=0))

    assert "corrupt GGUF file (a tensor count of" in error_of(source)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (gguf_string("k") + struct.pack("<I", 13), "unknown value type 13 in metadata value 'k'"),
        (gguf_string("k") + struct.pack("<IIQ", ARRAY, 99, 1), "unknown array item type 99"),
        (
            gguf_string("general.alignment") + struct.pack("<II", U32, 24),
            "alignment 24 is not a power of two",
        ),
    ],
)
def test_corrupt_metadata(body: bytes, expected: str) -> None:
    assert expected in error_of(MemorySource(gguf_file(body=body) + bytes(64)))


def test_arrays_nested_too_deep() -> None:
    value = struct.pack("<I", ARRAY) + struct.pack("<IQ", ARRAY, 1) * 10_000
    source = MemorySource(gguf_file(body=gguf_string("k") + value + bytes(64)))

    assert "corrupt GGUF file (arrays nested over 8 deep in metadata value 'k')" in error_of(source)


def test_repeated_key() -> None:
    entry = gguf_string("k") + struct.pack("<II", U32, 1)
    source = MemorySource(gguf_file(kvs=2, body=entry + entry))

    assert "corrupt GGUF file (a repeated key in metadata value 'k')" in error_of(source)


def test_too_many_dimensions() -> None:
    info = gguf_string("w") + struct.pack("<I", 5) + struct.pack("<5Q", *[1] * 5)
    source = MemorySource(gguf_file(tensors=1, kvs=0, body=info + bytes(64)))

    assert "5 dimensions in tensor info 'w'" in error_of(source)


def test_misaligned_tensor_offset() -> None:
    info = gguf_string("w") + struct.pack("<IQIQ", 1, 8, 0, 3)
    source = MemorySource(gguf_file(tensors=1, kvs=0, body=info + bytes(64)))

    assert "data offset 3 not aligned to 32 in tensor info 'w'" in error_of(source)


@pytest.mark.parametrize(("version", "expected"), [(1, "version 1 is too old"), (7, "version 7")])
def test_unsupported_versions(version: int, expected: str) -> None:
    assert expected in error_of(MemorySource(gguf_file(version=version)))


def test_big_endian_file(make_model: Callable[..., Path]) -> None:
    path = make_model("big.gguf", endianess=gguf.GGUFEndian.BIG)

    assert "big-endian GGUF file" in error_of(FileSource(path))


def test_random_corruption_never_escapes_as_another_exception(tiny_model: Path) -> None:
    original = tiny_model.read_bytes()
    header_end = header_of(tiny_model).data_offset
    rng = random.Random(1234)

    for _ in range(300):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(header_end)] = rng.randrange(256)
        with contextlib.suppress(GGUFError):
            read_header(MemorySource(bytes(data)))
