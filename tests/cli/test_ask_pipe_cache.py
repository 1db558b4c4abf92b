"""Asking about the same piped file again, each `ask` in a new process with the real starter
model: the second reads only its own question (the file's tokens come from the prefix cache,
with or without --no-save), and `--json` and `--stats` say so; another file or another context
size gets no hit. The piped text goes first, so a text too long for the context is cut before
the question, never the question."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from termllm_cli import termllm_process

from termllm.app import build_services
from termllm.cli.ask_cmd import join_prompt
from termllm.config import load_config
from termllm.domain import GenParams, Message, Role
from termllm.services.chat import LoadOptions

GREEDY = ("--temperature", "0", "--seed", "3", "--max-tokens", "2", "--threads", "1")
QUESTION = "What is the first item of the list?"
OTHER_QUESTION = "How many lines does this text have?"
# What follows the file in the prompt: the blank line, the question and the template's close.
QUESTION_TOKENS = 24


def document(topic: str, lines: int = 60) -> str:
    """About 12 tokens a line; the topic comes first, so two topics differ from the start."""
    rows = [f"{topic.capitalize()}: notes from the yearly inventory."]
    rows += [f"{n}. The {topic} shelf {n} holds {n * 7 % 97} boxes." for n in range(lines)]
    return "\n".join(rows)


def ask(*args: str, piped: str) -> tuple[dict[str, Any], str]:
    """The --json answer, and what went to stderr."""
    result = termllm_process("ask", *GREEDY, "--json", *args, stdin=piped)
    assert result.code == 0, result.err
    answer: dict[str, Any] = json.loads(result.out)
    return answer, result.err


def cached(answer: dict[str, Any]) -> int:
    count: int = answer["timings"]["cached_tokens"]
    return count


def test_a_second_question_about_a_piped_file_reads_only_itself(
    starter_model: Path, isolated_env: Path
) -> None:
    text = document("apple")
    first, err = ask(QUESTION, piped=text)
    assert err == ""
    assert cached(first) == 0
    saved_states = list((Path(os.environ["TERMLLM_HOME"]) / "cache" / "kv").glob("*.kv"))
    assert len(saved_states) == 2, "the conversation's state and the prompt's"

    second, stats = ask("--no-save", "--stats", OTHER_QUESTION, piped=text)
    file_tokens = first["usage"]["prompt_tokens"] - QUESTION_TOKENS
    assert cached(second) >= file_tokens
    assert second["usage"]["prompt_tokens"] - cached(second) <= QUESTION_TOKENS
    assert second["conversation_id"] is None
    shown = re.search(r"(\d+) prompt tokens \((\d+) cached\)", stats)
    assert shown is not None, stats
    assert int(shown.group(2)) == cached(second)


def test_another_file_or_another_context_size_gets_no_hit(
    starter_model: Path, isolated_env: Path
) -> None:
    text = document("apple")
    ask("--no-save", QUESTION, piped=text)
    other_file, _ = ask("--no-save", QUESTION, piped=document("pear"))
    other_context, _ = ask("--no-save", "--ctx", "2048", OTHER_QUESTION, piped=text)
    assert cached(other_file) == 0
    assert cached(other_context) == 0


def test_a_piped_text_too_long_is_cut_before_the_question(starter_model: Path) -> None:
    services = build_services(load_config())
    chat = services.chat
    model = chat.load(chat.choose_model(str(starter_model)), LoadOptions(n_ctx=256, threads=1))
    try:
        prompt = join_prompt(QUESTION, document("apple"))
        fitted = chat.fit(model, [Message(Role.USER, prompt)], GenParams(max_tokens=16))
    finally:
        model.close()
    (cut,) = fitted.messages
    assert fitted.prompt_tokens <= 256 - 16
    assert cut.content.startswith("Apple: notes from the yearly inventory.")
    assert cut.content.endswith(f"\n\n{QUESTION}")
    assert len(cut.content) < len(prompt)
