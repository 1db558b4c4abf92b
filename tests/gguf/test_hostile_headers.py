"""Hostile GGUF headers: values llama.cpp aborts the process on, keys and strings of tens of
megabytes. Each is refused before llama.cpp sees the file, in one short line that says why."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hostile_gguf import Value, rewrite, u32, u32_array
from termllm_cli import termllm, termllm_process

from termllm.errors import GGUFError
from termllm.gguf.cursor import MAX_HEADER_BYTES
from termllm.gguf.reader import read_header
from termllm.gguf.source import FileSource
from termllm.gguf.summary import summarize

LAYERS = 30  # the starter model's
# Each aborted llama.cpp (SIGABRT, a GGML_ASSERT and a gdb backtrace on stdout) or, for the
# context, crashed llama-cpp-python; the message each gives instead.
ABORTING: dict[str, tuple[dict[str, Value | None], str]] = {
    "no layers": (
        {"llama.block_count": u32(0)},
        "llama.block_count is 0 (llama.cpp loads 1 to 512 layers)",
    ),
    "a million layers": (
        {"llama.block_count": u32(1_000_000)},
        "llama.block_count is 1,000,000 (llama.cpp loads 1 to 512 layers)",
    ),
    "one layer over the limit": (
        {"llama.block_count": u32(513)},
        "llama.block_count is 513 (llama.cpp loads 1 to 512 layers)",
    ),
    "a context of 2**32 - 1": (
        {"llama.context_length": u32(2**32 - 1)},
        "llama.context_length is 4,294,967,295 (termllm accepts up to 16,777,216)",
    ),
    "too many experts": (
        {"llama.expert_count": u32(1025), "llama.expert_used_count": u32(2)},
        "llama.expert_count is 1,025 (llama.cpp supports up to 1,024 experts)",
    ),
    "experts none of which is used": (
        {"llama.expert_count": u32(8)},
        "llama.expert_used_count is 0 (the model has 8 experts to use)",
    ),
    "more experts used than there are": (
        {"llama.expert_count": u32(2), "llama.expert_used_count": u32(3)},
        "llama.expert_used_count is 3 (more than the 2 experts of the model)",
    ),
    "experts used without experts": (
        {"llama.expert_used_count": u32(2)},
        "llama.expert_used_count is 2 (more than the 0 experts of the model)",
    ),
    "no KV heads in a layer with attention": (
        {"llama.attention.head_count_kv": u32_array([3] * (LAYERS - 1) + [0])},
        "llama.attention.head_count_kv is 0 (for layer 29, which has attention weights)",
    ),
}


@pytest.fixture(scope="module")
def hostile_models(starter_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile-headers")
    for index, (changes, _) in enumerate(ABORTING.values()):
        rewrite(starter_model, folder / f"bad{index}.gguf", changes)
    return folder


CASES = [
    pytest.param(index, reason, id=name)
    for index, (name, (_, reason)) in enumerate(ABORTING.items())
]


@pytest.mark.parametrize(("index", "reason"), CASES)
def test_the_header_check_names_the_wrong_value(
    hostile_models: Path, index: int, reason: str
) -> None:
    path = hostile_models / f"bad{index}.gguf"

    with pytest.raises(GGUFError) as caught:
        read_header(FileSource(path))

    assert str(caught.value) == f"{path}: unusable model: {reason}"


@pytest.mark.parametrize(("index", "reason"), CASES)
def test_ask_refuses_the_file_instead_of_aborting(
    hostile_models: Path, index: int, reason: str
) -> None:
    path = hostile_models / f"bad{index}.gguf"

    result = termllm_process("ask", "-m", str(path), "--no-save", "Hi")

    assert (result.code, result.out) == (1, "")
    assert result.err == f"termllm: error: {path}: unusable model: {reason}\n"


def test_info_and_doctor_report_the_wrong_value(
    capsys: pytest.CaptureFixture[str], hostile_models: Path
) -> None:
    path = str(hostile_models / "bad0.gguf")

    for command in (["info", path], ["doctor", "-m", path]):
        result = termllm(capsys, *command)
        assert result.code == 1
        assert "unusable model: llama.block_count is 0" in result.err


def test_a_context_of_zero_means_not_known(starter_model: Path, tmp_path: Path) -> None:
    # llama.cpp loads such a file; `info` and the context planner must not take 0 for a size.
    path = rewrite(starter_model, tmp_path / "zero.gguf", {"llama.context_length": u32(0)})

    assert summarize(read_header(FileSource(path))).context_length is None


# Tens of megabytes where a few bytes belong


class PatternSource:
    """A file of `size` bytes: `data`, then `unit` over and over. It counts the bytes read, as
    a remote file would be paid for."""

    def __init__(self, data: bytes, size: int, unit: bytes = b"\0") -> None:
        self._data = data
        self._unit = unit
        self.size = size
        self.label = "hf://evil/model.gguf"
        self.bytes_read = 0

    def read_at(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        self.bytes_read += length
        chunk = self._data[offset : offset + length]
        if len(chunk) == length:
            return chunk
        start = max(offset, len(self._data)) - len(self._data)
        phase = start % len(self._unit)
        repeats = (length - len(chunk) + phase) // len(self._unit) + 1
        rest = (self._unit * repeats)[phase : phase + length - len(chunk)]
        return chunk + rest


def gguf_start(kv_count: int = 1) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, 0, kv_count)


def gguf_string(raw: bytes) -> bytes:
    return struct.pack("<Q", len(raw)) + raw


def test_a_key_of_90_mb_is_refused_unread() -> None:
    length = 90 << 20
    source = PatternSource(gguf_start() + struct.pack("<Q", length), 100 << 20)

    with pytest.raises(GGUFError) as caught:
        read_header(source)

    assert str(caught.value) == (
        "hf://evil/model.gguf: corrupt GGUF file (a key of 94,371,840 bytes in metadata entry 0)"
    )
    assert source.bytes_read < 1 << 20


def test_a_string_of_90_mb_is_refused_unread() -> None:
    start = gguf_start() + gguf_string(b"general.name") + struct.pack("<IQ", 8, 90 << 20)
    source = PatternSource(start, 100 << 20)

    with pytest.raises(GGUFError, match="the GGUF header runs past 64 MiB"):
        read_header(source)

    assert source.bytes_read < 1 << 20


def test_a_header_is_not_read_past_its_limit() -> None:
    # A thousand strings of 100 KB: each a plausible size, all of them too big a header.
    unit = gguf_string(bytes(100_000))
    start = gguf_start() + gguf_string(b"general.tags") + struct.pack("<IIQ", 9, 8, 1000)
    source = PatternSource(start, 200 << 20, unit)

    with pytest.raises(GGUFError) as caught:
        read_header(source)

    assert str(caught.value) == (
        "hf://evil/model.gguf: the GGUF header runs past 64 MiB (in metadata value "
        "'general.tags'), more than any model's; termllm does not read further"
    )
    assert source.bytes_read <= MAX_HEADER_BYTES


def test_a_hostile_key_is_quoted_short_and_safe() -> None:
    key = b"\x1b]0;pwned\x07\x1b[2J" + b"k" * 1000
    entry = gguf_string(key) + struct.pack("<II", 4, 1)
    data = gguf_start(kv_count=2) + entry + entry

    with pytest.raises(GGUFError) as caught:
        read_header(PatternSource(data, len(data) + 64))

    message = str(caught.value)
    assert "corrupt GGUF file (a repeated key in metadata value '" in message
    assert "\x1b" not in message and "\x07" not in message
    assert len(message) < 200
