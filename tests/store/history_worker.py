"""A separate process using the history store, for tests of concurrency and crashes.

    history_worker.py DB GO_FILE write TAG COUNT   COUNT conversations of one question, one answer
    history_worker.py DB GO_FILE forever TAG       questions and answers in one conversation,
                                                   until killed

Each prints "ready" once started, waits for GO_FILE to exist (so that all workers start at
once), then prints the id of every message after add_message has returned.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from termllm.store import HistoryStore


def main(db: str, go_file: str, mode: str, tag: str, count: str = "0") -> None:
    print("ready", flush=True)
    while not Path(go_file).exists():
        time.sleep(0.002)
    with HistoryStore.open(Path(db)) as store:
        conversation = None
        n = 0
        while mode == "forever" or n < int(count):
            if conversation is None or mode == "write":
                conversation = store.create_conversation(f"{tag} title {n}", "m", None, {})
            question = store.add_message(
                conversation.id, None, "user", f"payload question {tag}q{n}"
            )
            print(question.id, flush=True)
            answer = store.add_message(
                conversation.id,
                question.id,
                "assistant",
                f"payload answer {tag}a{n} " + "words " * 50,
                finish_reason="stop",
            )
            print(answer.id, flush=True)
            n += 1


if __name__ == "__main__":
    main(*sys.argv[1:])
