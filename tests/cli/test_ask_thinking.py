"""`termllm ask` with a thinking model: the reasoning dimmed on a terminal's stderr (or hidden),
never on stdout; --json and the history carry it apart; the budget and the limits say what
happened. The real starter model thinks here behind a template that opens its reasoning."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest
from template_models import opens_reasoning
from termllm_cli import termllm_process

GREEDY = ("--temperature", "0", "--seed", "7")
QUESTION = "Write a long story about a dragon who learns to bake bread."


@pytest.fixture
def thinking(starter_model: Path, tmp_path: Path) -> tuple[str, ...]:
    """`ask` arguments that make the starter model a thinking model."""
    return ("-m", str(starter_model), "--chat-template", str(opens_reasoning(tmp_path)), *GREEDY)


def ask_on_a_terminal(*args: str) -> tuple[int, bytes, bytes]:
    """`ask` with stderr on a pseudo-terminal and stdout on a pipe, as in `ask … > file`."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "termllm", "ask", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    os.close(follower)
    seen = bytearray()
    while True:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            seen.extend(chunk)
        elif process.poll() is not None:
            break
    assert process.stdout is not None
    out = process.stdout.read()
    code = process.wait(timeout=120)
    os.close(leader)
    return code, out, bytes(seen)


def without_escapes(shown: bytes) -> bytes:
    return re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", shown)


def test_json_carries_the_reasoning_apart_and_the_budget_lets_the_answer_come(
    thinking: tuple[str, ...],
) -> None:
    result = termllm_process(
        "ask", *thinking, "--think-budget", "5", "--max-tokens", "32", "--json", QUESTION
    )
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert answer["reasoning"] and answer["content"]
    assert "<think>" not in answer["content"] and "</think>" not in answer["content"]
    assert 5 < answer["usage"]["reasoning_tokens"] < answer["usage"]["completion_tokens"]

    shown = termllm_process("history", "show", answer["conversation_id"], "--json")
    assert shown.code == 0, shown.err
    saved = json.loads(shown.out)["messages"][-1]
    assert (saved["content"], saved["reasoning"]) == (answer["content"], answer["reasoning"])


def test_running_out_while_thinking_is_said_and_nothing_pretends_to_be_the_answer(
    thinking: tuple[str, ...],
) -> None:
    result = termllm_process("ask", *thinking, "--max-tokens", "6", QUESTION)
    assert result.code == 0, result.err
    assert result.out.strip() == ""
    assert (
        "warning: no answer: the token limit ran out while the model was still thinking"
        " (6 tokens of reasoning)"
    ) in result.err


def test_reasoning_goes_dimmed_to_a_terminals_stderr_and_never_to_stdout(
    thinking: tuple[str, ...],
) -> None:
    args = (*thinking, "--think-budget", "5", "--max-tokens", "32", "--no-save", QUESTION)
    code, out, err = ask_on_a_terminal(*args)
    assert code == 0, err
    piped = termllm_process("ask", *args, "--json")
    reasoning = json.loads(piped.out)["reasoning"]
    # Each piece comes in its own dim style: the words are read without the escape codes.
    opening = " ".join(reasoning.split()[:3]).encode()
    assert opening in without_escapes(err) and b"\x1b[2m" in err
    assert opening not in out and out.strip()

    code, out, err = ask_on_a_terminal(*args, "--hide-thinking")
    assert code == 0, err
    assert opening not in without_escapes(err) and out.strip()


def test_a_think_setting_the_model_cannot_follow_is_said_once(
    thinking: tuple[str, ...], starter_model: Path
) -> None:
    result = termllm_process(
        "ask", "-m", str(starter_model), *GREEDY, "--think", "off", "--max-tokens", "4", "Hi"
    )
    assert result.code == 0, result.err
    note = "warning: this model's thinking cannot be changed (think off is ignored)"
    assert result.err.count(note) == 1


def test_a_bad_think_value_is_one_line(starter_model: Path) -> None:
    result = termllm_process("ask", "-m", str(starter_model), "--think", "maybe", "Hi")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "termllm: error: --think: expected one of auto, on, off, low, medium, high, got 'maybe'"
    ]


def test_continuing_a_thinking_conversation_restores_its_state(
    thinking: tuple[str, ...],
) -> None:
    args = (*thinking, "--think-budget", "5", "--max-tokens", "24", "--json")
    first = json.loads(termllm_process("ask", *args, QUESTION).out)
    assert first["reasoning"] and first["content"]
    second = termllm_process("ask", *args, "--cid", first["conversation_id"], "Give it a title.")
    assert second.code == 0, second.err
    continued = json.loads(second.out)
    # The earlier reasoning is left out of the new prompt (Qwen3's template drops it), which
    # parts from the saved state where that reasoning opened: all before it is restored, and
    # what is read is the last answer and the new question (at most 4 tokens of `<think>\n`).
    read = continued["usage"]["prompt_tokens"] - continued["timings"]["cached_tokens"]
    new = continued["usage"]["prompt_tokens"] - first["usage"]["prompt_tokens"]
    assert continued["timings"]["cached_tokens"] >= first["usage"]["prompt_tokens"] - 5
    assert read <= new + 5
