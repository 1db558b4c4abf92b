"""`termllm ask` with the real starter model, run as users run it: a subprocess with pipes."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from termllm_cli import termllm_process

GREEDY = ("--temperature", "0", "--seed", "7")


def ask(*args: str, stdin: str | bytes = "") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "termllm", "ask", *args],
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        timeout=180,
        env=os.environ.copy(),
        check=False,
    )


def test_piped_stdin_alone_is_a_prompt_and_the_answer_is_plain(starter_model: Path) -> None:
    result = ask(*GREEDY, "--max-tokens", "24", stdin="What is 2+2?\n")
    assert result.returncode == 0, result.stderr
    answer = result.stdout.decode()
    assert answer.strip()
    assert answer.endswith("\n")
    assert b"\x1b" not in result.stdout
    assert result.stderr == b"", "nothing but the answer may be printed (no native logs)"


def test_continuing_reads_only_the_new_question(starter_model: Path) -> None:
    started = ask(*GREEDY, "--max-tokens", "12", "--json", "Name a colour.")
    assert started.returncode == 0, started.stderr
    first = json.loads(started.stdout)
    continued = ask("-c", *GREEDY, "--max-tokens", "4", "--json", "And another one?")
    assert continued.returncode == 0, continued.stderr
    second = json.loads(continued.stdout)
    assert second["conversation_id"] == first["conversation_id"]
    # The saved state holds the whole first prompt and answer (its last token included, which
    # generation never evaluates), and the opening of the next user turn, read ahead.
    used = first["usage"]["prompt_tokens"] + first["usage"]["completion_tokens"]
    assert second["timings"]["cached_tokens"] > used
    assert second["timings"]["cached_tokens"] < second["usage"]["prompt_tokens"]


def test_json_output_is_complete_and_deterministic(starter_model: Path) -> None:
    args = (*GREEDY, "--max-tokens", "16", "--json", "Name a colour.")
    first, second = ask(*args), ask(*args)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert set(result) == {
        "model",
        "content",
        "reasoning",
        "finish_reason",
        "usage",
        "timings",
        "conversation_id",
        "message_id",
        "load",
    }
    assert result["model"] == "SmolLM2-135M-Instruct.Q4_1"
    load = result["load"]
    assert load["n_ctx"] > 0 and load["threads"] > 0 and load["server"] is None
    assert 0 <= load["gpu_layers"] <= load["total_layers"] and load["device"]
    assert load["kv_cache_type"] == "f16" and load["chat_template"] == "gguf"
    assert result["finish_reason"] in {"stop", "length"}
    assert result["usage"]["prompt_tokens"] > 5
    assert 0 < result["usage"]["completion_tokens"] <= 16
    timings = result["timings"]
    speeds = {"ttft_ms", "prompt_tokens_per_s", "decode_tokens_per_s", "load_ms"}
    assert set(timings) == {*speeds, "cached_tokens"}
    assert all(timings[name] > 0 for name in speeds)
    assert timings["cached_tokens"] == 0, "a new conversation has nothing to start from"
    assert json.loads(second.stdout)["content"] == result["content"]


def test_prompt_and_piped_text_are_joined(starter_model: Path) -> None:
    alone = json.loads(ask(*GREEDY, "--max-tokens", "4", "--json", "Summarize:").stdout)
    joined = json.loads(
        ask(*GREEDY, "--max-tokens", "4", "--json", "Summarize:", stdin="a b c d e f g h\n").stdout
    )
    assert joined["usage"]["prompt_tokens"] > alone["usage"]["prompt_tokens"] + 4


def test_invalid_utf8_input_is_replaced_not_fatal(starter_model: Path) -> None:
    result = ask(*GREEDY, "--max-tokens", "8", "Echo this:", stdin=b"caf\xe9 \xff\xfe bytes\n")
    assert result.returncode == 0, result.stderr


def test_oversized_input_is_cut_to_the_context_with_a_warning(starter_model: Path) -> None:
    huge = "lorem ipsum dolor sit amet " * 2000
    result = ask(*GREEDY, "--ctx", "256", "--max-tokens", "8", "--json", "Summarize:", stdin=huge)
    assert result.returncode == 0, result.stderr
    assert b"warning: the prompt was cut from" in result.stderr
    assert json.loads(result.stdout)["usage"]["prompt_tokens"] <= 256


def test_stats_go_to_stderr(starter_model: Path) -> None:
    result = ask(*GREEDY, "--max-tokens", "8", "--stats", "Hi")
    assert result.returncode == 0
    assert b"decode" in result.stderr and b"tok/s" in result.stderr
    assert b"tok/s" not in result.stdout


@pytest.mark.parametrize(
    ("stop", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
    ids=["ctrl-c", "sigterm", "sighup"],
)
def test_a_stop_signal_ends_at_once_keeps_the_partial_answer_and_says_how(
    starter_model: Path, stop: signal.Signals, code: int
) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "termllm",
            "ask",
            *GREEDY,
            "--max-tokens",
            "3000",
            "Write a very long story about a dragon.",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    assert process.stdout is not None
    first = process.stdout.read(20)
    assert first
    process.send_signal(stop)
    rest, err = process.communicate(timeout=30)
    assert process.returncode == code, err
    assert b"Traceback" not in err
    partial = first + rest
    assert partial.endswith(b"\n")
    assert len(partial.split()) < 2500
    (listed,) = json.loads(termllm_process("history", "ls", "--json").out)
    shown = json.loads(termllm_process("history", "show", listed["id"], "--json").out)
    answer = shown["messages"][-1]
    assert answer["finish_reason"] == "cancelled"
    assert answer["content"] and partial.decode().startswith(answer["content"][:10])


def test_a_broken_pipe_exits_quietly(starter_model: Path) -> None:
    pipeline = subprocess.run(
        f"{sys.executable} -m termllm ask --temperature 0 --max-tokens 200 'Count to fifty.'"
        " </dev/null | head -c 5",
        shell=True,
        capture_output=True,
        timeout=180,
        env=os.environ.copy(),
        check=False,
    )
    assert pipeline.returncode == 0
    assert len(pipeline.stdout) == 5
    assert pipeline.stderr == b""


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("-m", "no-such-model", "hi"), 3, "no local model matches"),
        (("--temperature", "-1", "hi"), 2, "temperature"),
        (("--gpu-layers", "many", "hi"), 2, "--gpu-layers: expected auto"),
        ((), 2, "nothing to ask"),
        (("--chat-template", "no-such-format", "hi"), 1, "no-such-format"),
    ],
)
def test_bad_input_is_one_clear_line(
    starter_model: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    result = termllm_process("ask", *args)
    assert result.code == code, result.err
    assert message in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert result.out == ""


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not a model", "not a GGUF file"), (None, "truncated")],
)
def test_a_corrupt_model_file_is_refused_before_loading(
    starter_model: Path, tmp_path: Path, content: bytes | None, message: str
) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content if content is not None else starter_model.read_bytes()[:50_000_000])
    result = termllm_process("ask", "-m", str(bad), "hi")
    assert result.code == 1
    assert message in result.err and result.err.count("\n") == 1


def test_a_tiny_context_still_answers(starter_model: Path) -> None:
    # The model's answer to this runs to 650 tokens or more whatever the evaluation schedule
    # (measured on AVX2), so it is the context, not the model, that ends it.
    result = ask(*GREEDY, "--ctx", "128", "--json", "Tell me about the sea in detail.")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["finish_reason"] == "length"
    assert answer["usage"]["prompt_tokens"] + answer["usage"]["completion_tokens"] <= 128


def test_continuing_a_conversation_uses_its_saved_settings_unless_flags_override(
    starter_model: Path,
) -> None:
    from termllm.app import build_services
    from termllm.config import load_config
    from termllm.domain import GenParams
    from termllm.services.conversation_settings import ConversationSettings

    # Long enough to tell apart from the template's own default system prompt.
    system = "You are a counting machine. " + "You only ever write numbers. " * 15
    history = build_services(load_config()).history
    started = history.start("SmolLM2-135M-Instruct.Q4_1", None, GenParams(), "Count")
    history.save_settings(
        started.id,
        ConversationSettings(system, GenParams(temperature=0.0, max_tokens=3), n_ctx=512),
    )
    history.close()
    prompt = "Write the numbers from 1 to 50, separated by commas."
    fresh = json.loads(ask("--no-save", "--json", "--max-tokens", "3", prompt).stdout)

    saved = ask("--cid", started.id[:8], "--json", "-v", prompt)
    assert saved.returncode == 0, saved.stderr
    answer = json.loads(saved.stdout)
    assert (answer["finish_reason"], answer["usage"]["completion_tokens"]) == ("length", 3)
    assert answer["usage"]["prompt_tokens"] > fresh["usage"]["prompt_tokens"] + 50
    assert b"context 512 tokens" in saved.stderr

    flags = ("--json", "--max-tokens", "5", "--system", "", "--ctx", "1024", "-v")
    overridden = ask("--cid", started.id[:8], *flags, prompt)
    assert overridden.returncode == 0, overridden.stderr
    override = json.loads(overridden.stdout)
    assert (override["finish_reason"], override["usage"]["completion_tokens"]) == ("length", 5)
    assert override["usage"]["prompt_tokens"] < answer["usage"]["prompt_tokens"]
    assert b"context 1024 tokens" in overridden.stderr
