"""`termllm pull` and remote `info` end to end: the real CLI, huggingface_hub and a fake Hub."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakehub import TOKEN, FakeHub
from huggingface_hub import scan_cache_dir
from termllm_cli import Result, termllm, termllm_process

from termllm.config import load_config

Capsys = pytest.CaptureFixture[str]
STARTER_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
STARTER_FILE = "smollm2-135m-instruct-q4_1.gguf"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        yield fake


@pytest.fixture
def starter_repo(hub: FakeHub, starter_model: Path) -> FakeHub:
    hub.add_repo(STARTER_REPO, {STARTER_FILE: starter_model, "README.md": b"# SmolLM2\n"})
    return hub


def hub_models(capsys: Capsys) -> list[dict[str, object]]:
    listed = json.loads(termllm(capsys, "ls", "--json").out)
    return [entry for entry in listed if entry["source"] == "hub"]


def test_pull_downloads_verifies_and_lists_the_model(
    capsys: Capsys, starter_repo: FakeHub, starter_model: Path
) -> None:
    result = termllm(capsys, "pull", STARTER_REPO)  # one GGUF in the repo: no quant needed
    assert result.code == 0, result.err
    assert result.out == ""
    assert "pulled HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:Q4_1" in result.err
    [model] = hub_models(capsys)
    assert model["ref"] == f"{STARTER_REPO}:Q4_1"
    assert Path(str(model["path"])).read_bytes() == starter_model.read_bytes()
    cache = load_config().paths.hub_cache
    [repo] = scan_cache_dir(cache).repos
    assert repo.repo_id == STARTER_REPO
    info = json.loads(termllm(capsys, "info", f"{STARTER_REPO}:q4_1", "--json").out)
    assert info["source"] == "hub" and info["parameter_count"] == 134_515_008

    starter_repo.clear_log()
    again = termllm(capsys, "pull", f"{STARTER_REPO}:Q4_1")
    assert again.code == 0 and "already present" in again.err
    assert starter_repo.file_gets() == []


def test_plain_progress_lines_when_stderr_is_not_a_terminal(starter_repo: FakeHub) -> None:
    result = termllm_process("pull", STARTER_REPO)
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    assert lines[0].startswith(f"downloading {STARTER_FILE} (98.4 MB")
    assert any(line.endswith("50%") for line in lines)
    assert "\x1b[" not in result.err


def _wait_for_partial(cache: Path, at_least: int, process: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partial = sum(
            path.stat().st_size
            for path in cache.glob("models--*/blobs/*")
            if path.is_file() and not path.name.endswith(".lock")
        )
        if partial >= at_least:
            return partial
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    pytest.fail("the download did not progress")


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT])
def test_an_interrupted_pull_resumes_where_it_stopped(
    capsys: Capsys, starter_repo: FakeHub, starter_model: Path, stop: signal.Signals
) -> None:
    starter_repo.delay_per_chunk = 0.002
    cache = load_config().paths.hub_cache
    process = subprocess.Popen(
        [sys.executable, "-m", "termllm", "pull", STARTER_REPO],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    _wait_for_partial(cache, 4 << 20, process)
    process.send_signal(stop)
    _, err = process.communicate(timeout=30)
    if stop == signal.SIGINT:
        assert process.returncode == 130
        assert "Traceback" not in err
    kept = _wait_for_partial(cache, 1, process)
    assert 0 < kept < starter_model.stat().st_size
    assert hub_models(capsys) == []  # a partial file is not a model

    starter_repo.delay_per_chunk = 0.0
    starter_repo.clear_log()
    result = termllm(capsys, "pull", STARTER_REPO)
    assert result.code == 0, result.err
    [resumed] = starter_repo.log(server="cdn", method="GET")
    assert resumed.range is not None
    start = int(resumed.range.removeprefix("bytes=").split("-")[0])
    assert start >= 4 << 20
    [model] = hub_models(capsys)
    assert Path(str(model["path"])).read_bytes() == starter_model.read_bytes()


def test_a_corrupt_download_is_rejected_and_leaves_no_model(
    capsys: Capsys, starter_repo: FakeHub
) -> None:
    starter_repo.corrupt = True
    result = termllm(capsys, "pull", STARTER_REPO)
    assert result.code == 5
    assert "sha256 mismatch" in result.err
    assert hub_models(capsys) == []
    cache = load_config().paths.hub_cache
    assert not list(cache.glob("models--*/snapshots/*/*.gguf"))


def test_split_models_are_pulled_listed_and_removed_whole(capsys: Capsys, hub: FakeHub) -> None:
    parts = {f"Q8_0/big-Q8_0-0000{n}-of-00003.gguf": bytes([n]) * 1000 for n in (1, 2, 3)}
    hub.add_repo("org/Big-GGUF", {**parts, "small-Q4_K_M.gguf": b"q4" * 10})
    assert termllm(capsys, "pull", "org/Big-GGUF:q8_0").code == 0
    [model] = hub_models(capsys)
    assert model["ref"] == "org/Big-GGUF:Q8_0"
    assert len(model["paths"]) == 3  # type: ignore[arg-type]
    assert str(model["path"]).endswith("00001-of-00003.gguf")
    removed = termllm(capsys, "rm", "-y", "org/Big-GGUF:Q8_0")
    assert removed.code == 0 and "freed 3.0 KB" in removed.err
    assert hub_models(capsys) == []


def test_repo_alone_picks_q4_k_m_or_explains_the_choices(capsys: Capsys, hub: FakeHub) -> None:
    hub.add_repo("org/Two-GGUF", {"m-Q4_K_M.gguf": b"a" * 10, "m-Q8_0.gguf": b"b" * 20})
    hub.add_repo("org/NoDefault-GGUF", {"m-Q5_K_M.gguf": b"a", "m-Q8_0.gguf": b"b"})
    assert termllm(capsys, "pull", "org/Two-GGUF").code == 0
    assert [m["quant"] for m in hub_models(capsys)] == ["Q4_K_M"]
    result = termllm(capsys, "pull", "org/NoDefault-GGUF")
    assert result.code == 2
    assert (
        "Q5_K_M" in result.err and "Q8_0" in result.err and "org/NoDefault-GGUF:QUANT" in result.err
    )


def expect_error(result: Result, code: int, *fragments: str) -> None:
    assert result.code == code, result
    assert result.out == ""
    # Progress lines may come first (a gated file fails only when its download starts).
    last_line = result.err.splitlines()[-1]
    assert last_line.startswith("termllm: error: ") and "Traceback" not in result.err, result.err
    for fragment in fragments:
        assert fragment in result.err


def test_bad_references_get_clear_errors(capsys: Capsys, hub: FakeHub) -> None:
    hub.add_repo("org/m-GGUF", {"m-Q4_K_M.gguf": b"a", "m-Q8_0.gguf": b"b"})
    hub.add_repo("org/safetensors", {"model.safetensors": b"x", "README.md": b"y"})
    expect_error(termllm(capsys, "pull", "org/nope"), 3, "org/nope", "not found")
    expect_error(termllm(capsys, "pull", "org/m-GGUF:Q2_K"), 3, "no Q2_K", "Q4_K_M", "Q8_0")
    expect_error(termllm(capsys, "pull", "org/m-GGUF/nope.gguf"), 3, "m-Q8_0.gguf")
    expect_error(termllm(capsys, "pull", "org/safetensors"), 3, "no GGUF files")
    expect_error(termllm(capsys, "pull", "org/m-GGUF@v9:Q8_0"), 3, "v9")
    expect_error(termllm(capsys, "pull", "./local.gguf"), 1, "not a Hub reference")


def test_gated_repos_need_a_token(
    capsys: Capsys, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.add_repo("meta/Gated-GGUF", {"g-Q4_K_M.gguf": b"secret"}, gated=True)
    expect_error(termllm(capsys, "pull", "meta/Gated-GGUF"), 1, "gated", "HF_TOKEN")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert termllm(capsys, "pull", "meta/Gated-GGUF").code == 0


def test_offline_and_unreachable_hub(
    capsys: Capsys, starter_repo: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    expect_error(termllm(capsys, "pull", STARTER_REPO), 4, "offline")
    assert starter_repo.log() == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert termllm(capsys, "pull", STARTER_REPO).code == 0

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "already present" in termllm(capsys, "pull", STARTER_REPO).err
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    started = time.monotonic()
    expect_error(termllm(capsys, "pull", "org/other-GGUF"), 4, "cannot reach the Hub")
    assert time.monotonic() - started < 5
    assert "already present" in termllm(capsys, "pull", STARTER_REPO).err


def test_remote_info_reads_only_the_header(
    capsys: Capsys, starter_repo: FakeHub, starter_model: Path
) -> None:
    result = termllm(capsys, "info", f"{STARTER_REPO}:Q4_1", "--json")
    assert result.code == 0, result.err
    info = json.loads(result.out)
    assert info["source"] == "remote"
    assert info["parameter_count"] == 134_515_008
    assert info["chat_template_family"] == "chatml"
    assert info["file_size"] == starter_model.stat().st_size
    fetched = 0
    for request in starter_repo.log(server="cdn", method="GET"):
        assert request.range is not None
        first, last = request.range.removeprefix("bytes=").split("-")
        fetched += int(last) - int(first) + 1
    assert 0 < fetched < 8 << 20
    assert hub_models(capsys) == []
