"""Strings from a model file's header are shown by `info` and `ls` as one safe, bounded line."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
from termllm_cli import termllm

from termllm.cli.models_cmd import METADATA_CHARS

Capsys = pytest.CaptureFixture[str]
EVIL_NAME = "\x1b[2J\x1b]0;pwned\x07Evil [red]model[/red]\n" + "x" * 5000
EVIL_LICENSE = "\x9b31mMIT\x00"


def evil_model(path: Path) -> Path:
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name(EVIL_NAME)
    writer.add_license(EVIL_LICENSE)
    writer.add_context_length(128)
    writer.add_block_count(1)
    writer.add_embedding_length(8)
    writer.add_feed_forward_length(16)
    writer.add_head_count(1)
    writer.add_head_count_kv(1)
    writer.add_file_type(0)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_info_shows_header_strings_as_safe_bounded_lines(capsys: Capsys, tmp_path: Path) -> None:
    # A file name that splits lines too: names come from anyone.
    result = termllm(capsys, "info", str(evil_model(tmp_path / "evil\nname.gguf")))
    assert result.code == 0, result.err
    for code in ("\x1b", "\x07", "\x00", "\x9b"):
        assert code not in result.out
    name = next(line for line in result.out.splitlines() if line.startswith("name"))
    assert "Evil [red]model[/red] xxx" in name and len(name) < METADATA_CHARS + 20
    assert any(line.split() == ["license", "31mMIT"] for line in result.out.splitlines())
    assert any("evil name.gguf" in line for line in result.out.splitlines())

    listed = termllm(capsys, "ls")
    assert listed.code == 0 and "evil name.gguf" in listed.out
    assert "\x1b" not in listed.out and "evil\nname" not in listed.out
