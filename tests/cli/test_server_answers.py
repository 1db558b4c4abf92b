"""What `ask`, `ls` and `doctor` make of a fake OpenAI-compatible server's answers: reasoning,
usage, the request sent, listings, and Ctrl-C closing the stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai import (
    MODEL,
    FakeOpenAI,
    Listing,
    Silent,
    Status,
    Stream,
    closed_port_url,
    content,
    fake_openai,
    write_servers,
)
from fake_openai_cli import REF, Capsys, ask, fake, last_answer
from termllm_cli import termllm

from termllm.errors import ExitCode

__all__ = ["fake"]  # the fixture, used by name


# Reasoning, usage and the request -----------------------------------------------------------


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_deltas_are_the_reasoning_not_the_answer(
    capsys: Capsys, fake: FakeOpenAI, field: str
) -> None:
    fake.chat = Stream(
        ({field: "The user "}, {field: "greets me."}, content("Hello"), content(" there."))
    )
    result = ask(capsys, "--json", "Hi")
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert (answer["reasoning"], answer["content"]) == ("The user greets me.", "Hello there.")
    saved = last_answer(capsys)
    assert (saved["reasoning"], saved["content"]) == ("The user greets me.", "Hello there.")


def test_an_inline_think_block_is_the_reasoning(capsys: Capsys, fake: FakeOpenAI) -> None:
    fake.chat = Stream(
        tuple(content(piece) for piece in ("<thi", "nk>Short ", "question.</th", "ink>\n\n4"))
    )
    result = ask(capsys, "--json", "2+2?")
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert answer["reasoning"] == "Short question."
    assert answer["content"].strip() == "4" and "think" not in answer["content"]
    assert last_answer(capsys)["reasoning"] == "Short question."


def test_plain_output_is_only_the_answer(capsys: Capsys, fake: FakeOpenAI) -> None:
    fake.chat = Stream(({"reasoning_content": "thinking"}, content("Answer.")))
    result = ask(capsys, "Hi")
    assert result.code == 0, result.err
    assert result.out == "Answer.\n"


def test_reported_usage_is_carried_by_json(capsys: Capsys, fake: FakeOpenAI) -> None:
    usage = {
        "prompt_tokens": 12,
        "completion_tokens": 7,
        "completion_tokens_details": {"reasoning_tokens": 3},
    }
    fake.chat = Stream(({"reasoning_content": "r"}, content("Hi.")), usage=usage)
    result = ask(capsys, "--json", "--stats", "Hi")
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert answer["usage"] == {"prompt_tokens": 12, "completion_tokens": 7, "reasoning_tokens": 3}
    assert "12 prompt tokens" in result.err and "7 generated (3 reasoning)" in result.err


def test_usage_not_reported_is_unknown(capsys: Capsys, fake: FakeOpenAI) -> None:
    fake.chat = Stream((content("Hi."),))
    result = ask(capsys, "--json", "--stats", "Hi")
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert answer["usage"]["prompt_tokens"] is None
    assert answer["usage"]["completion_tokens"] is None
    assert answer["timings"]["decode_tokens_per_s"] is None
    assert "unknown prompt tokens" in result.err and "unknown generated" in result.err


def test_the_sampling_settings_are_sent(capsys: Capsys, fake: FakeOpenAI) -> None:
    result = ask(
        capsys,
        *("--temperature", "0.3", "--top-p", "0.8", "--max-tokens", "17", "--seed", "42"),
        *("--top-k", "5", "--min-p", "0.1", "--repeat-penalty", "1.2", "-s", "Be brief."),
        "Hi",
    )
    assert result.code == 0, result.err
    [request] = fake.chat_requests()
    body = request.body
    assert body["model"] == MODEL and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
        0.3,
        0.8,
        17,
        42,
    )
    assert (body["top_k"], body["min_p"], body["repeat_penalty"]) == (5, 0.1, 1.2)
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert request.headers["content-type"] == "application/json"


def test_a_continuation_sends_the_earlier_turns_without_their_reasoning(
    capsys: Capsys, fake: FakeOpenAI
) -> None:
    fake.chat = Stream(({"reasoning_content": "secret thoughts"}, content("Four.")))
    assert ask(capsys, "2+2?").code == 0
    fake.chat = Stream((content("Five."),))
    assert termllm(capsys, "ask", "-c", "And 2+3?").code == 0
    sent = fake.chat_requests()[-1].body
    assert sent["model"] == MODEL
    assert [m["content"] for m in sent["messages"]] == ["2+2?", "Four.", "And 2+3?"]


# ls and doctor ------------------------------------------------------------------------------


def test_ls_lists_a_server_that_is_up_and_one_that_is_down(
    capsys: Capsys, fake: FakeOpenAI, isolated_env: Path, starter_model: Path
) -> None:
    fake.models = Listing(("alpha", "org/beta:q4"))
    with fake_openai() as silent:
        silent.models = Silent()
        write_servers(
            isolated_env,
            {
                "box": {"url": fake.url},
                "down": {"url": closed_port_url()},
                "mute": {"url": silent.url, "timeout_s": 1},
            },
        )
        started = time.monotonic()
        table = termllm(capsys, "ls")
        listed = termllm(capsys, "ls", "--json")
        assert time.monotonic() - started < 10, "servers are asked in parallel, each bounded"
    assert table.code == 0 and listed.code == 0, table.err + listed.err
    rows = {line.split()[0]: line for line in table.out.splitlines()[1:]}
    assert "server" in rows["@box/alpha"] and "@box/org/beta:q4" in rows
    assert "unreachable" in rows["@down/…"] and "connection refused" in rows["@down/…"]
    assert "unreachable" in rows["@mute/…"] and "sent nothing for 1 s" in rows["@mute/…"]
    assert starter_model.stem in table.out, "local models are still listed"
    entries = json.loads(listed.out)
    by_server = {e.get("server"): e for e in entries if e["source"] == "server" and not e["ref"]}
    assert set(by_server) == {"down", "mute"}
    assert all(e["reachable"] is False and e["error"] for e in by_server.values())
    assert [e["ref"] for e in entries if e.get("server") == "box"] == [
        "@box/alpha",
        "@box/org/beta:q4",
    ]
    assert any(e["source"] == "package" for e in entries)


def test_doctor_reports_a_refusing_server_without_failing(capsys: Capsys, fake: FakeOpenAI) -> None:
    fake.models = Status(503, "loading model")
    result = termllm(capsys, "doctor", "--json")
    assert result.code == 0, result.err
    [server] = json.loads(result.out)["servers"]
    assert server["reachable"] is False and "loading model" in server["error"]


# Cancel -------------------------------------------------------------------------------------


def ask_process(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "termllm", "ask", "-m", REF, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )


@pytest.mark.parametrize("interval_s", [0.2, 3.0], ids=["slow", "pausing"])
def test_ctrl_c_closes_the_stream_at_once_and_keeps_the_partial_answer(
    capsys: Capsys, fake: FakeOpenAI, interval_s: float
) -> None:
    words = tuple(content(f"word{i} ") for i in range(200))
    fake.chat = Stream(words, interval_s=interval_s)
    process = ask_process("Count.")
    assert process.stdout is not None
    first = os.read(process.stdout.fileno(), 100)
    assert first.startswith(b"word0")
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    rest, err = process.communicate(timeout=30)
    assert process.returncode == ExitCode.INTERRUPTED, err
    assert b"Traceback" not in err
    assert fake.disconnected_at is not None, "the stream was closed before its end"
    # Not at the server's next chunk: a server between two chunks stops generating now.
    assert fake.disconnected_at - interrupted < 1.0
    assert fake.chunks_sent < len(words)
    answer = last_answer(capsys)
    assert answer["finish_reason"] == "cancelled"
    partial = (first + rest).decode()
    assert answer["content"].startswith("word0 ") and partial.startswith(answer["content"])


def test_ctrl_c_while_the_server_has_not_answered_yet_ends_at_once(
    capsys: Capsys, fake: FakeOpenAI, isolated_env: Path
) -> None:
    write_servers(isolated_env, {"box": {"url": fake.url, "timeout_s": 120}})
    fake.chat = Silent()
    process = ask_process("A very long prompt.")
    deadline = time.monotonic() + 60
    while not fake.chat_requests() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.chat_requests(), "the question reached the server"
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert time.monotonic() - interrupted < 5, "not the 120 s timeout"
    assert process.returncode == ExitCode.INTERRUPTED, err
    assert b"Traceback" not in err
    assert last_answer(capsys)["finish_reason"] == "cancelled"
