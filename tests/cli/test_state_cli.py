"""Continuing a conversation in a new `ask` process from its saved model state, with the real
starter model: only the new tokens are read. (That the restored state continues with the
distribution a full re-read has is tested in tests/engine/test_kv_state.py: the two read the
prompt in other batches, so their greedy text need not be the same.)"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from termllm_cli import termllm_process

GREEDY = ("--temperature", "0", "--seed", "3", "--max-tokens", "24", "--json")
FIRST = "List five facts about the Moon, one per line, with a short explanation for each."
FOLLOW_UP = "Which of those facts is the most surprising?"


def ask_json(*args: str) -> dict[str, Any]:
    result = termllm_process("ask", *GREEDY, *args)
    assert result.code == 0, result.err
    assert result.err == "", "nothing reaches the terminal, restoring included"
    answer: dict[str, Any] = json.loads(result.out)
    return answer


def kv_files(home: Path) -> list[Path]:
    return sorted((home / "cache" / "kv").glob("*.kv"))


@pytest.fixture
def home(isolated_env: Path) -> Path:
    return Path(os.environ["TERMLLM_HOME"])


def test_a_new_process_continues_from_the_saved_state(
    starter_model: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ask_json(FIRST)
    cid = first["conversation_id"]
    (saved,) = kv_files(home)
    assert saved.name.startswith(f"{cid}.")

    with monkeypatch.context() as without_cache:
        without_cache.setenv("TERMLLM_CACHE_DISK_MB", "0")
        reread = ask_json("--cid", cid, "--no-save", FOLLOW_UP)
    restored = ask_json("--cid", cid, "--no-save", FOLLOW_UP)

    assert reread["timings"]["cached_tokens"] == 0
    history_tokens = first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"] - 1
    assert restored["timings"]["cached_tokens"] >= history_tokens - 2
    assert restored["usage"]["prompt_tokens"] == reread["usage"]["prompt_tokens"]
    assert restored["content"] and reread["content"]


def test_history_rm_removes_the_saved_state(starter_model: Path, home: Path) -> None:
    kept = ask_json("Say hello.")["conversation_id"]
    removed = ask_json("Say goodbye.")["conversation_id"]
    assert len(kv_files(home)) == 2
    result = termllm_process("history", "rm", "-y", removed)
    assert result.code == 0, result.err
    (left,) = kv_files(home)
    assert left.name.startswith(f"{kept}.")


def test_a_state_made_from_another_version_of_the_model_file_is_not_used(
    starter_model: Path, home: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "model.gguf"
    shutil.copyfile(starter_model, copy)
    cid = ask_json("-m", str(copy), FIRST)["conversation_id"]
    # Same path, new modification time: the file may hold other weights now.
    os.utime(copy, (1_000_000_000, 1_000_000_000))
    again = ask_json("-m", str(copy), "--cid", cid, FOLLOW_UP)
    assert again["timings"]["cached_tokens"] == 0
    assert len(kv_files(home)) == 2, "the old state is another identity's, kept until evicted"


def test_a_corrupt_state_file_is_discarded_with_a_log_line(starter_model: Path, home: Path) -> None:
    cid = ask_json(FIRST)["conversation_id"]
    (saved,) = kv_files(home)
    data = bytearray(saved.read_bytes())
    data[-1000:] = bytes(1000)
    saved.write_bytes(bytes(data))
    again = ask_json("--cid", cid, "--no-save", FOLLOW_UP)
    assert again["timings"]["cached_tokens"] == 0
    assert kv_files(home) == []
    log = (home / "logs" / "termllm.log").read_text()
    assert f"discarded the model state {saved.name}: its checksum does not match" in log
