"""`pull` and remote `info` against a hostile Hub: one clean line, a non-zero exit, no hang, and
nothing lost that a later pull could resume."""

import os
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakehub import FakeHub
from termllm_cli import Result, termllm

Capsys = pytest.CaptureFixture[str]
REPO = "org/model-GGUF"
NAME = "m-Q4_K_M.gguf"
MODEL = os.urandom(300_000)
TRICKLE_AT = 100_000

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        yield fake


def one_error_line(result: Result, code: int, *fragments: str) -> str:
    assert result.code == code, result
    assert result.out == ""
    line = result.err.splitlines()[-1]
    assert line.startswith("termllm: error: ") and "Traceback" not in result.err, result.err
    assert not any(ch in result.err for ch in "\x1b\x07\x00\r"), result.err
    for fragment in fragments:
        assert fragment in line, line
    return line


def test_a_trickling_server_ends_pull_and_info_with_the_network_error_and_pull_resumes(
    capsys: Capsys, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERMLLM_HUB_TIMEOUT_S", "1")
    hub.add_repo(REPO, {NAME: MODEL})
    hub.trickle_from = TRICKLE_AT

    started = time.monotonic()
    pulled = termllm(capsys, "pull", REPO)
    one_error_line(pulled, 4, "less than 16 KiB arrived in 1 s", "run pull again to resume")
    info = termllm(capsys, "info", REPO)
    one_error_line(info, 4, "lost the connection to the download server")
    assert time.monotonic() - started < 10

    hub.trickle_from = None
    hub.clear_log()
    again = termllm(capsys, "pull", REPO)
    assert again.code == 0, again.err
    [resumed] = hub.log("cdn", "GET")
    assert int((resumed.range or "bytes=0-").removeprefix("bytes=").rstrip("-")) >= TRICKLE_AT


def test_a_trickling_listing_is_the_network_error(
    capsys: Capsys, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERMLLM_HUB_TIMEOUT_S", "1")
    hub.add_repo(REPO, {NAME: MODEL})
    hub.trickle_listings = True
    started = time.monotonic()
    one_error_line(termllm(capsys, "info", REPO), 4, f"lost the connection to the Hub at {hub.url}")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("inf", "must be a finite number, got inf"),
        ("-inf", "must be a finite number, got -inf"),
        ("-1", "must be above 0, got -1.0"),
        ("0", "must be above 0, got 0.0"),
        ("nan", "must be a finite number, got nan"),
        ("1e400", "must be a finite number, got inf"),
        ("3601", "must be at most 3600, got 3601.0"),
    ],
)
def test_the_hub_timeout_must_be_a_usable_number_of_seconds(
    capsys: Capsys, hub: FakeHub, monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("TERMLLM_HUB_TIMEOUT_S", value)
    result = termllm(capsys, "pull", REPO)
    one_error_line(result, 2, f"TERMLLM_HUB_TIMEOUT_S: {problem}")
    assert hub.log() == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("inf", "must be a finite number"),
        ("nan", "must be a finite number"),
        ("-1", "must be above 0"),
        ("0.0", "must be above 0"),
    ],
)
def test_the_hub_timeout_in_the_config_file_is_checked_too(
    capsys: Capsys, hub: FakeHub, isolated_env: Path, value: str, problem: str
) -> None:
    config = isolated_env / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f"[hub]\n\ntimeout_s = {value}\n", encoding="utf-8")
    result = termllm(capsys, "pull", REPO)
    one_error_line(result, 2, f"config.toml:3: hub.timeout_s: {problem}")
    assert hub.log() == []


HOSTILE = "evil\n\x1b[2J\x1b]0;pwned\x07-Q4_K_M.gguf"


@pytest.mark.parametrize("command", ["pull", "info"])
def test_a_hostile_file_name_is_refused_in_one_line(
    capsys: Capsys, hub: FakeHub, command: str
) -> None:
    hub.add_repo(REPO, {HOSTILE: b"GGUF", "README.md": b"hi"})
    line = one_error_line(
        termllm(capsys, command, REPO),
        3,
        "has no GGUF file termllm will pull; the Hub lists names that are not safe relative paths",
        "'evil [2J ]0;pwned -Q4_K_M.gguf'",
    )
    assert len(line) < 300
    assert [r.path for r in hub.log()] == [f"/api/models/{REPO}"]  # nothing was fetched


def test_a_hostile_name_beside_a_good_model_does_not_stop_its_pull(
    capsys: Capsys, hub: FakeHub
) -> None:
    hub.add_repo(REPO, {HOSTILE: b"GGUF", NAME: MODEL})
    result = termllm(capsys, "pull", REPO)
    assert result.code == 0, result.err
    assert "evil" not in result.err and "\x1b" not in result.err


def test_a_malformed_file_entry_is_not_a_hub(capsys: Capsys, hub: FakeHub) -> None:
    hub.add_repo(REPO, {NAME: MODEL})
    hub.edit_listing = lambda body: {**body, "siblings": [{"rfilename": 5, "size": 1}]}
    for command in ("pull", "info"):
        one_error_line(
            termllm(capsys, command, REPO), 1, f"{hub.url} did not answer like a Hugging Face Hub"
        )


def _many_files(count: int) -> Callable[[dict[str, Any]], object]:
    lfs = {"sha256": "0" * 64, "size": 1, "pointerSize": 134}
    names = [f"part-{index:06d}-Q8_0.gguf" for index in range(count)]
    siblings = [{"rfilename": name, "size": 1, "lfs": lfs} for name in names]
    return lambda body: {**body, "siblings": siblings}


@pytest.mark.parametrize(
    ("count", "suffix", "code", "fragment"),
    [
        (200_000, "/nope.gguf", 3, "has no file 'nope.gguf'; it has: part-000000-Q8_0.gguf, "),
        (20_000, ":Q8_0", 2, "has several Q8_0 files (part-000000-Q8_0.gguf, "),
        (20_000, ":Q2_K", 3, "has no Q2_K file; it offers: Q8_0 (0 MB), "),
    ],
)
def test_a_repo_of_many_files_gets_a_short_error(
    capsys: Capsys, hub: FakeHub, count: int, suffix: str, code: int, fragment: str
) -> None:
    hub.add_repo(REPO, {NAME: MODEL})
    hub.edit_listing = _many_files(count)
    line = one_error_line(termllm(capsys, "pull", REPO + suffix), code, fragment)
    assert f" …and {count - 8:,} more" in line
    assert len(line) < 600


def test_info_stops_reading_a_remote_header_with_a_huge_key(
    capsys: Capsys, hub: FakeHub, tmp_path: Path
) -> None:
    """`info evil/hugekey`: a header whose first key claims 90 MB, in a 100 MB file."""
    evil = tmp_path / "hugekey.gguf"
    with evil.open("wb") as handle:
        handle.write(b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 90_000_000))
        handle.truncate(100_000_000)  # sparse: costs no disk
    hub.add_repo("evil/hugekey", {"hugekey-Q8_0.gguf": evil})

    line = one_error_line(termllm(capsys, "info", "evil/hugekey"), 1)

    assert len(line) < 400
    fetched = 0
    for request in hub.log("cdn", "GET"):
        first, last = (request.range or "").removeprefix("bytes=").split("-")
        fetched += int(last) - int(first) + 1
    assert fetched < 2 << 20
