"""Continuing a long conversation: time to first token with the saved model state, against a
fresh short prompt, in the same run (issue targets: both ratios ≤ 1.5, saving ≤ 5 %).

1. `termllm ask --cid` in a new process on a conversation of ≥ 1,500 tokens, against a fresh
   ~20-word prompt in a new process: wall time from starting the process to the first answer
   byte (what the user waits). Also shown: the same continuation with the state cache off.
2. Switching back to a conversation in the app (ChatSession, the code the TUI worker runs):
   the first token of a turn after answering in another conversation, against the same turn
   without the switch.
3. Saving the state after an answer (taking it from the model and writing it to disk),
   against the answer's own time (restore, prompt, 128 generated tokens by default).

Runs alternate so machine noise hits both sides alike.

Run: .venv/bin/python benchmarks/continuation.py [--runs 5] [--threads 2] [--history 1500]
     [--turn-tokens N] [--answer-tokens 128] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from starter import MODEL_VARIABLE

from termllm.app import Services, build_services
from termllm.config import load_config
from termllm.domain import Completion, GenParams, Message, PromptProgress, Role, TextChunk
from termllm.services.bench import synthetic_history
from termllm.services.chat import LoadOptions
from termllm.services.turn import NewQuestion, TurnListener
from termllm.tui.session import ChatSession

MODEL = os.environ.get(MODEL_VARIABLE) or "SmolLM2-135M-Instruct"
FRESH_PROMPT = "Give me one tip for writing clear commit messages in a software project today."
HISTORY_TOKENS = 1500
GREEDY = ("--temperature", "0", "--seed", "7")
LONG_ANSWER = "Now write a long story about a lighthouse keeper and a storm."


def seed_conversation(
    services: Services, tokens: int, threads: int, answer_params: dict[str, int]
) -> tuple[str, int]:
    """A saved conversation whose history renders to at least `tokens` tokens, answering with
    `answer_params` in the app."""
    chat = services.chat
    model = chat.choose_model(MODEL)
    loaded = chat.load(model, _options(threads))
    try:
        history = synthetic_history(loaded, tokens)
        history.append(Message(Role.ASSISTANT, "Sure, here is how it works in short."))
        counted = loaded.count_prompt_tokens(history)
    finally:
        loaded.close()
    store = services.history.store
    conversation = store.create_conversation("benchmark", model.ref, None, answer_params)
    parent = None
    for message in history:
        parent = store.add_message(conversation.id, parent, message.role.value, message.content).id
    return conversation.id, counted


def _options(threads: int) -> LoadOptions:
    return LoadOptions(threads=threads)


def first_byte_s(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "termllm", "ask", "-m", MODEL, *GREEDY, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert process.stdout is not None
    first = process.stdout.read(1)
    elapsed = time.perf_counter() - started
    _, err = process.communicate()
    if process.returncode != 0 or not first:
        raise SystemExit(f"ask failed: {err.decode().strip()}")
    return elapsed


def new_process(cid: str, runs: int, threads: int, env: dict[str, str]) -> dict[str, float]:
    common = ["--threads", str(threads), "--max-tokens", "8", "--no-save"]
    # The first continuation reads the history and saves the state the others start from.
    first_byte_s([*common[:-1], "--cid", cid, "What did we talk about first?"], env)
    no_cache = {**env, "TERMLLM_CACHE_DISK_MB": "0"}
    fresh, restored, reread = [], [], []
    for _ in range(runs):
        fresh.append(first_byte_s([*common, FRESH_PROMPT], env))
        restored.append(first_byte_s([*common, "--cid", cid, "And what came next?"], env))
        reread.append(first_byte_s([*common, "--cid", cid, "And what came next?"], no_cache))
    return {
        "fresh_s": statistics.median(fresh),
        "restored_s": statistics.median(restored),
        "reread_s": statistics.median(reread),
        "ratio": statistics.median(restored) / statistics.median(fresh),
    }


def switch_back(
    services: Services, long_cid: str, runs: int, answer_params: dict[str, int]
) -> dict[str, float]:
    session = ChatSession(services, MODEL)
    store = services.history.store
    other = store.create_conversation("other", None, None, answer_params).id
    # The timings come back in the result: the benchmark shows nothing while a turn runs.
    quiet = TurnListener()

    def ttft_ms(cid: str, text: str) -> float:
        result = session.ask(NewQuestion(text, conversation_id=cid), quiet, threading.Event())
        return result.completion.timings.ttft_ms

    ttft_ms(long_cid, "Start.")  # reads the history once
    ttft_ms(other, "Hello.")
    same, switched = [], []
    for turn in range(runs):
        same.append(ttft_ms(long_cid, f"Tell me more, part {turn}a."))
        ttft_ms(other, f"Something else, part {turn}.")
        switched.append(ttft_ms(long_cid, f"Tell me more, part {turn}b."))
    return {
        "same_ms": statistics.median(same),
        "switched_ms": statistics.median(switched),
        "ratio": statistics.median(switched) / statistics.median(same),
    }


def saving(services: Services, cid: str, runs: int, threads: int, tokens: int) -> dict[str, float]:
    chat = services.chat
    loaded = chat.load(chat.choose_model(MODEL), _options(threads))
    params = GenParams(temperature=0.0, seed=7, max_tokens=tokens)
    answer_s, held_s, save_s = [], [], []
    try:
        resumed = services.history.resume(cid)
        messages = [*resumed.messages, Message(Role.USER, LONG_ANSWER)]
        for _ in range(runs):
            loaded.clear_state()
            started = time.perf_counter()
            answer = ""
            for chunk in chat.stream(loaded, cid, messages, params, threading.Event()):
                assert isinstance(chunk, Completion | PromptProgress | TextChunk)
                if isinstance(chunk, Completion):
                    answer = chunk.content
            answer_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            chat.keep_state(loaded, cid, [*messages, Message(Role.ASSISTANT, answer)])
            held_s.append(time.perf_counter() - started)
            chat.flush_states()
            save_s.append(time.perf_counter() - started)
    finally:
        loaded.close()
    answer = statistics.median(answer_s)
    return {
        "answer_s": answer,
        "held_s": statistics.median(held_s),
        "save_s": statistics.median(save_s),
        "held_ratio": statistics.median(held_s) / answer,
        "ratio": statistics.median(save_s) / answer,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--history", type=int, default=HISTORY_TOKENS)
    parser.add_argument(
        "--turn-tokens", type=int, default=None, help="longest answer of an app turn (no limit)"
    )
    parser.add_argument(
        "--answer-tokens", type=int, default=128, help="length of the answer whose state is saved"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # Saved with the conversations, as a user sets them in the app.
    turn_params = {} if args.turn_tokens is None else {"max_tokens": args.turn_tokens}
    with tempfile.TemporaryDirectory(prefix="termllm-continuation-") as home:
        # The app's turns load the model with the configured threads: the same as the rest.
        env = {**os.environ, "TERMLLM_HOME": home, "TERMLLM_MODELS_THREADS": str(args.threads)}
        services = build_services(load_config(env))
        cid, history_tokens = seed_conversation(services, args.history, args.threads, turn_params)
        results: dict[str, Any] = {"history_tokens": history_tokens}
        results["new_process"] = new_process(cid, args.runs, args.threads, env)
        results["switch_back"] = switch_back(services, cid, args.runs, turn_params)
        results["saving"] = saving(services, cid, args.runs, args.threads, args.answer_tokens)
        services.history.close()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    process, switch, save = results["new_process"], results["switch_back"], results["saving"]
    print(f"history: {history_tokens} tokens")
    print(
        f"ask --cid, new process, first byte: {process['restored_s']:.3f} s from saved state,"
        f" {process['reread_s']:.3f} s re-reading; fresh prompt {process['fresh_s']:.3f} s"
        f" → ratio {process['ratio']:.2f} (target ≤ 1.5)"
    )
    print(
        f"TUI switch back, first token: {switch['switched_ms']:.0f} ms after a switch,"
        f" {switch['same_ms']:.0f} ms without → ratio {switch['ratio']:.2f} (target ≤ 1.5)"
    )
    print(
        f"saving state after a {save['answer_s']:.2f} s answer: the answer waits"
        f" {save['held_s'] * 1000:.0f} ms ({save['held_ratio'] * 100:.1f} %, target ≤ 5 %);"
        f" the disk write ends {save['save_s'] * 1000:.0f} ms after the answer"
        f" ({save['ratio'] * 100:.1f} %)"
    )


if __name__ == "__main__":
    main()
