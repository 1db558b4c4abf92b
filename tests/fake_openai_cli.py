"""The CLI against the fake OpenAI-compatible server (fake_openai.py): a `[servers.box]` serving
it, `ask` on its model, and what the history kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_openai import MODEL, FakeOpenAI, fake_openai, write_servers
from termllm_cli import Result, termllm

Capsys = pytest.CaptureFixture[str]
REF = f"@box/{MODEL}"


@pytest.fixture
def fake(isolated_env: Path) -> Iterator[FakeOpenAI]:
    with fake_openai() as server:
        write_servers(isolated_env, {"box": {"url": server.url}})
        yield server


def ask(capsys: Capsys, *args: str) -> Result:
    return termllm(capsys, "ask", "-m", REF, *args)


def one_error_line(result: Result) -> str:
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    return lines[0]


def last_answer(capsys: Capsys) -> dict[str, Any]:
    listed = json.loads(termllm(capsys, "history", "ls", "--json").out)
    shown = json.loads(termllm(capsys, "history", "show", listed[0]["id"], "--json").out)
    answer: dict[str, Any] = shown["messages"][-1]
    assert answer["role"] == "assistant"
    return answer
