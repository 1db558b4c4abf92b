import json
import shutil
from pathlib import Path

import pytest
from cache_builder import add_cached_repo
from termllm_cli import termllm, termllm_process

from termllm.config import load_config
from termllm.state import StateFile

Capsys = pytest.CaptureFixture[str]


def test_ls_shows_the_starter_model_from_its_package(capsys: Capsys, starter_model: Path) -> None:
    result = termllm(capsys, "ls")
    assert result.code == 0, result.err
    assert "SmolLM2-135M-Instruct.Q4_1" in result.out
    assert "135M" in result.out and "package" in result.out
    assert "\x1b[" not in result.out


def test_ls_json_lists_every_source(capsys: Capsys, starter_model: Path, tmp_path: Path) -> None:
    cache = load_config().paths.hub_cache
    add_cached_repo(cache, "org/Tiny-GGUF", {"tiny-Q8_0.gguf": starter_model.read_bytes()})
    own = tmp_path / "copy.gguf"
    shutil.copy(starter_model, own)
    assert termllm(capsys, "info", str(own)).code == 0  # using a file by path lists it
    listed = json.loads(termllm(capsys, "ls", "--json").out)
    by_source = {entry["source"]: entry for entry in listed}
    assert set(by_source) == {"hub", "package", "local"}
    assert by_source["hub"]["ref"] == "org/Tiny-GGUF:Q8_0"
    assert by_source["local"]["path"] == str(own)
    for entry in listed:
        assert {"ref", "path", "size_bytes", "quant", "source"} <= entry.keys()
        assert entry["size_bytes"] == starter_model.stat().st_size
        assert entry["parameter_count"] == 134_515_008


def test_info_on_the_starter_model(capsys: Capsys, starter_model: Path) -> None:
    result = termllm(capsys, "info", "smollm2-135m-instruct", "--json")
    assert result.code == 0, result.err
    info = json.loads(result.out)
    assert info["architecture"] == "llama"
    assert info["quant"] == "Q4_1"
    assert info["context_length"] == 8192
    assert info["block_count"] == 30
    assert info["embedding_length"] == 576
    assert info["chat_template_family"] == "chatml"
    assert info["license"] == "apache-2.0"
    assert info["context_size"] == 4096
    assert info["memory"]["total_bytes"] > info["file_size"]
    text = termllm(capsys, "info", str(starter_model)).out
    assert "chatml" in text and "135M" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04 not a gguf at all", "not a GGUF file"),
        (b"", "not a GGUF file"),
    ],
)
def test_info_on_a_file_that_is_not_gguf(
    capsys: Capsys, tmp_path: Path, content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    result = termllm(capsys, "info", str(bad))
    assert result.code == 1
    assert message in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_info_on_a_truncated_gguf(capsys: Capsys, tmp_path: Path, starter_model: Path) -> None:
    truncated = tmp_path / "half.gguf"
    with starter_model.open("rb") as source:
        truncated.write_bytes(source.read(starter_model.stat().st_size // 2))
    result = termllm(capsys, "info", str(truncated))
    assert result.code == 1
    assert "truncated" in result.err


def test_unknown_names_and_missing_files_say_what_to_do(capsys: Capsys, tmp_path: Path) -> None:
    result = termllm(capsys, "info", "no-such-model")
    assert result.code == 3
    assert "termllm ls" in result.err
    result = termllm(capsys, "info", str(tmp_path / "missing.gguf"))
    assert result.code == 1 and "no such file" in result.err
    result = termllm(capsys, "rm", "-y", "owner/repo:Q4_K_M")
    assert result.code == 3 and "no local model matches" in result.err


def test_rm_deletes_a_downloaded_model_and_reports_bytes(capsys: Capsys) -> None:
    cache = load_config().paths.hub_cache
    add_cached_repo(cache, "org/m", {"m-Q4_0.gguf": b"0" * 1500, "m-Q8_0.gguf": b"8" * 10})
    result = termllm(capsys, "rm", "org/m:Q4_0", "-y")
    assert result.code == 0, result.err
    assert "freed 1.5 KB" in result.err
    remaining = json.loads(termllm(capsys, "ls", "--json").out)
    assert [entry["ref"] for entry in remaining if entry["source"] == "hub"] == ["org/m:Q8_0"]


def test_rm_without_a_terminal_needs_yes(capsys: Capsys) -> None:
    cache = load_config().paths.hub_cache
    add_cached_repo(cache, "org/m", {"m-Q4_0.gguf": b"0"})
    result = termllm(capsys, "rm", "org/m:Q4_0")
    assert result.code == 2 and "pass -y" in result.err
    assert (cache / "models--org--m").exists()


def test_rm_refuses_files_termllm_does_not_own(
    capsys: Capsys, starter_model: Path, tmp_path: Path
) -> None:
    result = termllm(capsys, "rm", "-y", "smollm2-135m-instruct")
    assert result.code == 1 and "pip" in result.err
    assert starter_model.exists()
    own = tmp_path / "mine.gguf"
    shutil.copy(starter_model, own)
    result = termllm(capsys, "rm", "-y", str(own))
    assert result.code == 1 and "your own file" in result.err
    assert own.exists()
    assert termllm(capsys, "rm", "--forget", str(own)).code == 0
    assert own.exists()
    assert str(own) not in termllm(capsys, "ls").out


def test_help_and_ls_do_not_import_the_engine_or_the_tui(starter_model: Path) -> None:
    for args in (["--help"], ["ls"]):
        result = termllm_process(*args, python_flags=("-X", "importtime"))
        assert result.code == 0, result.err
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.err.splitlines()}
        # The servers' HTTP client too: without servers in the config, nothing needs it.
        for heavy in ("llama_cpp", "textual", "huggingface_hub", "httpx2", "termllm.remote"):
            assert heavy not in imported, f"`termllm {' '.join(args)}` imported {heavy}"


def test_usage_errors_are_one_line(capsys: Capsys) -> None:
    result = termllm(capsys, "ls", "--bogus")
    assert result.code == 2
    assert result.err == "termllm: error: No such option: --bogus (see 'termllm ls --help')\n"


def test_an_unreadable_model_cache_is_a_clear_error(
    capsys: Capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("HF_HUB_CACHE", str(blocked))
    result = termllm(capsys, "ls")
    assert result.code == 1
    assert result.err == (
        f"termllm: error: cannot read the model cache {blocked}: Not a directory\n"
    )


def test_using_a_packaged_or_cached_model_by_path_does_not_claim_it(
    capsys: Capsys, starter_model: Path
) -> None:
    # Remembered as a local file, another Python environment's package model would come back
    # as a second "SmolLM2-135M-Instruct" there and make the name ambiguous.
    config = load_config()
    add_cached_repo(config.paths.hub_cache, "org/m", {"m-Q4_0.gguf": b"0"})
    cached = next(config.paths.hub_cache.glob("models--org--m/snapshots/*/m-Q4_0.gguf"))
    for path in (starter_model, cached):
        termllm(capsys, "info", str(path))
    assert StateFile(config.paths.state_file).read().local_models == []
