"""`ls`, `ask`, `ask -c`, `doctor` and `bench` against a real OpenAI-compatible server:
llama-cpp-python's own, run on 127.0.0.1 with the starter model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai_server import MODEL_ALIAS, free_port, server_url, write_servers
from termllm_cli import termllm_process

__all__ = ["server_url"]  # the fixture, used by name

REF = f"@srv/{MODEL_ALIAS}"
GREEDY = ("--temperature", "0", "--seed", "3", "--max-tokens", "12")


@pytest.fixture
def home(isolated_env: Path, server_url: str) -> Path:
    down = f"http://127.0.0.1:{free_port()}/v1"
    write_servers(isolated_env, {"srv": server_url, "down": down})
    return isolated_env


def test_ls_lists_the_servers_models_beside_the_local_ones(home: Path) -> None:
    result = termllm_process("ls")
    assert result.code == 0, result.err
    rows = {line.split()[0]: line for line in result.out.splitlines()[1:]}
    assert "server" in rows[REF]
    assert "unreachable" in rows["@down/…"] and "connection refused" in rows["@down/…"]
    assert "SmolLM2-135M-Instruct.Q4_1" in rows, "the local models are still listed"

    listed = json.loads(termllm_process("ls", "--json").out)
    served = next(entry for entry in listed if entry["ref"] == REF)
    assert (served["source"], served["server"], served["reachable"]) == ("server", "srv", True)
    down = next(entry for entry in listed if entry.get("server") == "down")
    assert down["reachable"] is False and "connection refused" in down["error"]
    assert any(entry["source"] == "package" for entry in listed)


def test_ask_streams_from_the_server_and_a_continuation_keeps_its_model(home: Path) -> None:
    first = termllm_process("ask", "-m", REF, *GREEDY, "--json", "Say hi.")
    assert first.code == 0, first.err
    answer = json.loads(first.out)
    assert answer["model"] == REF and answer["content"].strip()
    assert answer["finish_reason"] in {"stop", "length"}
    # llama-cpp-python's server sends no usage in a stream: unknown, never a made-up count.
    assert answer["usage"]["prompt_tokens"] is None
    assert answer["usage"]["completion_tokens"] is None
    assert answer["timings"]["ttft_ms"] > 0
    assert answer["load"]["server"] == "srv"

    again = termllm_process("ask", "-c", *GREEDY, "--json", "And once more.")
    assert again.code == 0, again.err
    continued = json.loads(again.out)
    assert continued["model"] == REF
    assert continued["conversation_id"] == answer["conversation_id"]
    shown = json.loads(termllm_process("history", "show", answer["conversation_id"], "--json").out)
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"] * 2
    assert shown["messages"][-1]["content"] == continued["content"]


def test_stats_say_unknown_for_what_the_server_did_not_report(home: Path) -> None:
    result = termllm_process("ask", "-m", REF, *GREEDY, "--stats", "--no-save", "Hi")
    assert result.code == 0, result.err
    assert result.out.strip()
    assert "unknown prompt tokens" in result.err and "unknown generated" in result.err


def test_a_server_model_the_server_does_not_have_is_one_line_with_its_models(home: Path) -> None:
    result = termllm_process("ask", "-m", "@srv/no-such-model", "Hi")
    assert result.code == 4
    assert result.err.strip().splitlines() == [
        "termllm: error: server 'srv' has no model 'no-such-model'; it has: smol"
    ]


def test_a_server_that_is_down_is_exit_4_and_the_question_is_kept(home: Path) -> None:
    result = termllm_process("ask", "-m", "@down/x", "Are you there?")
    assert result.code == 4
    assert "cannot reach server 'down'" in result.err and len(result.err.splitlines()) == 1
    listed = json.loads(termllm_process("history", "ls", "--json").out)
    assert listed and listed[0]["model"] == "@down/x"


def test_doctor_lists_each_server_and_whether_it_answers(home: Path) -> None:
    result = termllm_process("doctor")
    assert result.code == 0, result.err
    srv = next(line for line in result.out.splitlines() if line.startswith("server srv"))
    assert "answers in" in srv and MODEL_ALIAS in srv
    down = next(line for line in result.out.splitlines() if line.startswith("server down"))
    assert "unreachable" in down

    report = json.loads(termllm_process("doctor", "--json").out)
    servers = {entry["name"]: entry for entry in report["servers"]}
    assert servers["srv"]["reachable"] and servers["srv"]["models"] == [MODEL_ALIAS]
    assert servers["srv"]["answer_ms"] > 0
    assert not servers["down"]["reachable"]


def test_bench_measures_a_server_model_over_the_network(home: Path) -> None:
    result = termllm_process("bench", "-m", REF, "--json", timeout=300)
    assert result.code == 0, result.err
    measured = json.loads(result.out)
    assert measured["model"] == REF and measured["ttft_ms"] > 0
    assert measured["pieces"] > 1 and measured["pieces_per_s"] > 0
