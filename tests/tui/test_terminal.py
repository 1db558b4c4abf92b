"""The real `termllm chat` in a pseudo-terminal with the starter model: llama.cpp's native log
must never reach the screen, and what was said must be in the history afterwards."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from termllm.app import build_services
from termllm.config import load_config

NATIVE_LOG_MARKERS = (b"llama_", b"ggml_", b"load_tensors", b"llm_load")


def read_until(fd: int, seen: bytearray, done: bytes, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen.extend(os.read(fd, 65536))
            except OSError:
                return False
            if done in seen:
                return True
    return False


def test_chat_in_a_terminal_keeps_native_output_off_the_screen(
    starter_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERMLLM_GENERATION_TEMPERATURE", "0")
    monkeypatch.setenv("TERMLLM_GENERATION_MAX_TOKENS", "16")
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "termllm", "chat"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    seen = bytearray()
    try:
        assert read_until(leader, seen, b"CPU", 60), seen[-2000:]
        # One key at a time, as a person types (tests/tui/test_prompt_burst.py sends bursts).
        for key in b"Say hi\r":
            os.write(leader, bytes([key]))
            time.sleep(0.02)
        assert read_until(leader, seen, b"tok/s", 60), seen[-2000:]
        os.write(leader, b"\x11")  # ctrl+q
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    assert process.returncode == 0
    leaked = [marker for marker in NATIVE_LOG_MARKERS if marker in seen]
    assert not leaked, f"native output reached the terminal: {leaked}"
    services = build_services(load_config())
    conversation = services.history.resume(None)
    question, answer = conversation.messages
    assert question.content == "Say hi"
    assert answer.content.strip()
    services.history.close()
