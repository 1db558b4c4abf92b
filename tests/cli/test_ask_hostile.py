"""`termllm ask` against input nobody vetted: arguments that are not UTF-8, a home folder of no
user, a conversation whose saved model names any file, a generation that fails with no reason.
One clean line each, and the question kept."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from termllm_cli import Result, termllm

from termllm.config import load_config

Capsys = pytest.CaptureFixture[str]
GREEDY = ("--temperature", "0", "--seed", "7", "--max-tokens", "4")
STARTER = "SmolLM2-135M-Instruct"
NO_USER = "~termllm-no-such-user"
# What a file opened by mistake would show of itself ("not a GGUF file (starts with …)").
SECRET = "root:x:0:0:secret first bytes"


def run_bytes(*args: str | bytes) -> subprocess.CompletedProcess[str]:
    """The real CLI given raw bytes as arguments, as a shell passes $'caf\\xe9'."""
    return subprocess.run(
        [sys.executable, "-m", "termllm", *args],
        input="",
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ.copy(),
        check=False,
    )


def one_line_error(result: Result, code: int) -> None:
    assert result.code == code, result
    assert result.err.count("\n") == 1 and result.err.startswith("termllm: error: "), result.err
    assert "unexpected" not in result.err and "Traceback" not in result.err


def conversations(capsys: Capsys) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(termllm(capsys, "history", "ls", "--json").out)
    return listed


def shown(capsys: Capsys, conversation_id: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(
        termllm(capsys, "history", "show", conversation_id, "--json").out
    )
    return record


def test_text_arguments_that_are_not_utf8_are_replaced(capsys: Capsys, starter_model: Path) -> None:
    done = run_bytes("ask", "-m", STARTER, *GREEDY, "-s", b"\xff", b"caf\xe9")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() and done.stderr == ""
    [entry] = conversations(capsys)
    record = shown(capsys, entry["id"])
    assert record["conversation"]["system_prompt"] == "\ufffd"
    assert record["messages"][0]["content"] == "caf\ufffd"

    unknown = run_bytes("ask", "--cid", b"\xff", "Hello")
    one_line_error(Result(unknown.returncode, unknown.stdout, unknown.stderr), 3)
    assert "no conversation '\ufffd'" in unknown.stderr


def test_a_model_file_whose_name_is_not_utf8_answers_and_is_continued(
    capsys: Capsys, starter_model: Path, tmp_path: Path
) -> None:
    odd = os.fsencode(tmp_path) + b"/caf\xe9.gguf"
    shutil.copyfile(starter_model, odd)
    first = run_bytes("ask", "-m", odd, *GREEDY, "Hello")
    assert first.returncode == 0, first.stderr
    [entry] = conversations(capsys)
    assert entry["model"] == "caf\ufffd"
    # The saved name, and the name given with the same bytes, find the file again.
    again = run_bytes("ask", "-c", *GREEDY, "And again?")
    assert again.returncode == 0, again.stderr
    by_name = run_bytes("ask", "-m", b"caf\xe9", "--no-save", *GREEDY, "Hi")
    assert by_name.returncode == 0, by_name.stderr
    assert [entry["message_count"] for entry in conversations(capsys)] == [4]


def test_a_path_in_the_home_of_no_user_is_a_reference_error(
    capsys: Capsys, starter_model: Path
) -> None:
    info = termllm(capsys, "info", f"{NO_USER}/x.gguf")
    one_line_error(info, 2)
    assert "there is no user 'termllm-no-such-user'" in info.err
    asked = termllm(capsys, "ask", "-m", f"{NO_USER}/x.gguf", "Hello")
    one_line_error(asked, 2)
    template = termllm(
        capsys, "ask", "-m", STARTER, "--no-save", "--chat-template", f"{NO_USER}/t.jinja", "Hi"
    )
    one_line_error(template, 1)
    assert "is neither a built-in" in template.err and "nor a file" in template.err


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (RuntimeError("llama_decode returned -3"), "llama_decode returned -3"),
        (AssertionError(), "AssertionError"),
    ],
    ids=["with a message", "without one"],
)
def test_a_failed_generation_says_its_reason_once(
    capsys: Capsys,
    monkeypatch: pytest.MonkeyPatch,
    starter_model: Path,
    failure: Exception,
    reason: str,
) -> None:
    import llama_cpp

    def fail(self: object, tokens: object) -> None:
        raise failure

    monkeypatch.setattr(llama_cpp.Llama, "eval", fail)
    result = termllm(capsys, "ask", "-m", STARTER, *GREEDY, "Hello")
    assert result.code == 1
    assert result.err == f"termllm: error: generation failed: {reason}\n"
    [entry] = conversations(capsys)
    answer = shown(capsys, entry["id"])["messages"][-1]
    assert (answer["finish_reason"], answer["error"]) == ("error", reason)


def imported(capsys: Capsys, tmp_path: Path, saved_model: str) -> str:
    """A conversation whose saved model is `saved_model`, as an import made before imports
    checked models left it, or another program wrote it straight into the history."""
    export = {
        "format": "termllm.conversation",
        "version": 1,
        "conversation": {
            "id": "c000000001",
            "title": "imported",
            "model": "org/m:Q4_K_M",
            "system_prompt": None,
            "params": {},
            "created_at": 1_700_000_000.0,
            "updated_at": 1_700_000_000.0,
        },
        "messages": [],
    }
    path = tmp_path / "one.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    assert termllm(capsys, "history", "import", str(path)).code == 0
    with sqlite3.connect(load_config(os.environ).paths.history_db) as db:
        db.execute("UPDATE conversations SET model = ?", (saved_model,))
    db.close()
    return "c000000001"


@pytest.mark.parametrize(
    "saved_model",
    [
        "../../../../etc/passwd",
        "{tmp}/secret.txt",
        "{tmp}/secret.gguf",
        "\x1b[2J\x1b]0;pwned\x07/x",
        f"{NO_USER}/x.gguf",
    ],
)
def test_a_saved_model_naming_a_file_is_never_opened_and_the_question_is_kept(
    capsys: Capsys, tmp_path: Path, saved_model: str
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    (tmp_path / "secret.gguf").symlink_to(secret)
    conversation_id = imported(capsys, tmp_path, saved_model.format(tmp=tmp_path))

    result = termllm(capsys, "ask", "--cid", conversation_id, "Hello")
    one_line_error(result, 3)
    assert "this conversation's model" in result.err and "cannot be used" in result.err
    assert "pass -m" in result.err
    for leaked in ("root:x", "secret first", "\x1b", "\x07"):
        assert leaked not in result.err
    question, answer = shown(capsys, conversation_id)["messages"]
    assert question["content"] == "Hello"
    assert answer["finish_reason"] == "error" and "cannot be used" in answer["error"]


def test_a_saved_path_of_a_model_on_this_machine_is_still_used(
    capsys: Capsys, tmp_path: Path, starter_model: Path
) -> None:
    conversation_id = imported(capsys, tmp_path, str(starter_model))
    result = termllm(capsys, "ask", "--cid", conversation_id, *GREEDY, "Hello")
    assert result.code == 0, result.err
    assert result.out.strip()
