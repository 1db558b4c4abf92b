"""The real `termllm chat` in a pseudo-terminal with the starter model: llama.cpp's native log
must never reach the screen, and what was said must be in the history afterwards."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from terminal_support import CTRL_Q, Terminal

from termllm.app import build_services
from termllm.config import load_config

NATIVE_LOG_MARKERS = (b"llama_", b"ggml_", b"load_tensors", b"llm_load")


def test_chat_in_a_terminal_keeps_native_output_off_the_screen(
    starter_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERMLLM_GENERATION_TEMPERATURE", "0")
    monkeypatch.setenv("TERMLLM_GENERATION_MAX_TOKENS", "16")
    with Terminal("chat") as terminal:
        assert terminal.read_until(b"CPU", 60), terminal.seen[-2000:]
        # One key at a time, as a person types (tests/tui/test_prompt_burst.py sends bursts).
        for key in b"Say hi\r":
            terminal.write(bytes([key]))
            time.sleep(0.02)
        assert terminal.read_until(b"tok/s", 60), terminal.seen[-2000:]
        terminal.write(CTRL_Q)
        assert terminal.wait(30) == 0
    seen = terminal.seen
    leaked = [marker for marker in NATIVE_LOG_MARKERS if marker in seen]
    assert not leaked, f"native output reached the terminal: {leaked}"
    services = build_services(load_config())
    conversation = services.history.resume(None)
    question, answer = conversation.messages
    assert question.content == "Say hi"
    assert answer.content.strip()
    services.history.close()


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_saves_the_streaming_answer_as_cancelled(
    starter_model: Path, monkeypatch: pytest.MonkeyPatch, stop: signal.Signals, code: int
) -> None:
    monkeypatch.setenv("TERMLLM_GENERATION_TEMPERATURE", "0")
    monkeypatch.setenv("TERMLLM_GENERATION_MAX_TOKENS", "3000")
    with Terminal("chat") as terminal:
        assert terminal.read_until(b"CPU", 60), terminal.seen[-2000:]
        terminal.write(b"Write a very long story about a dragon.\r")
        assert terminal.read_until(b"answering", 60), terminal.seen[-2000:]
        time.sleep(1.0)
        terminal.process.send_signal(stop)
        assert terminal.wait(30) == code
    services = build_services(load_config())
    conversation = services.history.resume(None).conversation
    question, answer = services.history.store.messages(conversation.id)
    assert question.content == "Write a very long story about a dragon."
    assert answer.finish_reason == "cancelled" and answer.content.strip()
    services.history.close()
