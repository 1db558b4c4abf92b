"""Where `ask` puts piped text: before the question or after it, judged on answers.

Document first and the question last is the order in which two questions about one file share
a prefix, so that the second reads only itself, and what Anthropic's long-context guidance
recommends ("queries at the end can improve response quality by up to 30%"); OpenAI's GPT-4.1
guide prefers instructions above the context when they are given once. So this measures it with
the starter model: a dozen small real tasks (notes, code, logs, a CSV, an e-mail, a diff, a
recipe, a review), each with a short answer a correct reply must hold, asked both ways, with
the text alone and with the text in the middle of about `--long` tokens of unrelated prose, as
a longer piped file holds what is asked about. Each is answered `--samples` times: greedy, then
with `ask`'s default sampling and a seed each.

An answer passes when it holds one of the task's expected answers as a word of its own (case
does not matter). The starter model is tiny: the point is the difference between the orders,
not the score.

Run: .venv/bin/python benchmarks/pipe_order.py [--long 1500] [--tasks N] [--samples 4]
     [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass, replace
from typing import Any

from starter import starter_model

from termllm.app import build_services
from termllm.cli.ask_cmd import join_prompt
from termllm.config import load_config
from termllm.domain import Completion, GenParams, Message, Role
from termllm.engine.base import LoadedModel
from termllm.services.chat import LoadOptions


@dataclass(frozen=True)
class Task:
    document: str
    question: str
    expected: tuple[str, ...]


_NOTES = (
    "Team sync, 12 March. Present: Ana, Ben and Chidi.\n"
    "The release of version 2.4 moves to Friday because the installer still fails on Windows.\n"
    "Ben will fix the installer. Chidi writes the release notes.\n"
    "Next meeting: Monday at 10:00 in room B."
)
_CODE = (
    "import re\n\n"
    "_UNITS = {'h': 3600, 'm': 60, 's': 1}\n\n\n"
    "def parse_duration(text):\n"
    '    """Turn a duration such as 1h30m into seconds."""\n'
    "    total = 0\n"
    "    for amount, unit in re.findall(r'(\\d+)([hms])', text):\n"
    "        total += int(amount) * _UNITS[unit]\n"
    "    return total\n"
)
_LOG = (
    "2024-05-01 10:00:01 INFO server starting, version 3.1.0\n"
    "2024-05-01 10:00:01 INFO listening on port 8080\n"
    "2024-05-01 10:00:05 ERROR could not open /etc/shop/settings.yaml: no such file\n"
    "2024-05-01 10:00:05 WARN falling back to the default settings\n"
    "2024-05-01 10:02:17 INFO 12 requests served"
)
_CSV = "name,city,age\nAlice,Paris,34\nBob,Oslo,27\nCarla,Rome,45"
_MAIL = (
    "Hi Sam,\n\nyour order 4417 of two blue kettles shipped today with ParcelNow and should "
    "arrive on Wednesday.\n\nRegards,\nLina from KettleShop"
)
_DIFF = (
    "diff --git a/app/auth.py b/app/auth.py\n"
    "--- a/app/auth.py\n"
    "+++ b/app/auth.py\n"
    "@@ -10,7 +10,7 @@ def login(user, password):\n"
    "-    if user.password == password:\n"
    "+    if check_password_hash(user.password_hash, password):\n"
    "         return create_session(user)\n"
)
_RECIPE = (
    "Pancakes for four: whisk 200 g of flour, 5 eggs and 300 ml of milk into a smooth batter. "
    "Let it rest for 20 minutes, then fry thin pancakes in a little butter."
)
_REVIEW = (
    "I sent the headphones back after two days: the left side crackled from the start and "
    "support never answered my emails. A waste of money."
)

TASKS = (
    Task(_NOTES, "On which day is the release now planned?", ("friday",)),
    Task(_NOTES, "Who will fix the installer?", ("ben",)),
    Task(_CODE, "What is the name of the function defined in this code?", ("parse_duration",)),
    Task(_LOG, "Which file could not be opened?", ("settings.yaml",)),
    Task(_LOG, "On which port does the server listen?", ("8080",)),
    Task(_CSV, "In which city does Bob live?", ("oslo",)),
    Task(_MAIL, "What is the order number?", ("4417",)),
    Task(_MAIL, "Which company delivers the order?", ("parcelnow",)),
    Task(_DIFF, "Which file does this diff change?", ("auth.py",)),
    Task(_RECIPE, "How many eggs does the recipe use?", ("5", "five")),
    Task(_REVIEW, "Is this review positive or negative? Answer in one word.", ("negative",)),
    Task(_RECIPE, "How long should the batter rest?", ("20 minutes", "twenty minutes")),
)

# Unrelated prose around the task's text in the long variant: none of it answers a question.
_FILLER = (
    "The old harbour town grew slowly over three centuries, first around the fish market and "
    "later along the river, where warehouses were built for grain and timber.",
    "Every autumn the hills behind the town turn red and brown, and walkers come from the "
    "nearby cities to follow the paths between the vineyards and the chestnut woods.",
    "The library moved twice before it settled in the former customs house, a building with "
    "thick stone walls that keep the reading rooms cool even in the hottest summers.",
    "Trains reach the valley from the north twice an hour, and a small ferry crosses the "
    "lake in the morning and in the evening, except when the wind is too strong.",
    "Local cooks are proud of a slow stew of beans and smoked pork, served with dark bread "
    "and a glass of the sour red wine that the valley has made since the Middle Ages.",
    "The school at the top of the hill teaches about four hundred children, many of whom "
    "walk up the steep lanes each morning, past the bakery and the closed cinema.",
)


def long_document(model: LoadedModel, document: str, tokens: int) -> str:
    """`document` in the middle of filler paragraphs, about `tokens` tokens in all."""
    before: list[str] = []
    after: list[str] = []
    turn = 0
    while model.count_prompt_tokens([Message(Role.USER, _joined(before, document, after))]) < (
        tokens
    ):
        paragraph = _FILLER[turn % len(_FILLER)]
        (before if turn % 2 == 0 else after).append(paragraph)
        turn += 1
    return _joined(before, document, after)


def _joined(before: list[str], document: str, after: list[str]) -> str:
    return "\n\n".join([*before, document, *after])


def question_first(question: str, piped: str) -> str:
    """The order `ask` used before: the question, then the piped text."""
    return "\n\n".join(part for part in (question, piped) if part)


def answer(model: LoadedModel, text: str, params: GenParams) -> str:
    for chunk in model.stream_chat([Message(Role.USER, text)], params, threading.Event()):
        if isinstance(chunk, Completion):
            return chunk.content
    raise AssertionError("an engine stream always ends with a Completion")


def passes(task: Task, reply: str) -> bool:
    """Whether `reply` holds one of the expected answers as a word of its own."""
    return any(
        re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", reply, re.IGNORECASE)
        for wanted in task.expected
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--long", type=int, default=1500, help="tokens of the long variant")
    parser.add_argument("--tasks", type=int, default=len(TASKS))
    parser.add_argument(
        "--samples", type=int, default=4, help="answers per task: greedy, then sampled"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tasks = TASKS[: args.tasks]
    orders = {"question first": question_first, "document first": join_prompt}
    with tempfile.TemporaryDirectory(prefix="termllm-pipe-order-") as home:
        services = build_services(load_config({**os.environ, "TERMLLM_HOME": home}))
        chat = services.chat
        loaded = chat.load(
            chat.choose_model(str(starter_model())), LoadOptions(threads=args.threads)
        )
        # The first answer greedy, the others with `ask`'s default sampling and their own seed.
        defaults = replace(chat.default_params(), max_tokens=args.max_tokens)
        samples = [replace(defaults, temperature=0.0, seed=7)]
        samples += [replace(defaults, seed=seed) for seed in range(1, args.samples)]
        results: dict[str, dict[str, Any]] = {}
        try:
            for variant in ("short", "long"):
                by_order: dict[str, Any] = {
                    name: {"passed": 0, "answers": 0, "replies": []} for name in orders
                }
                for task in tasks:
                    document = task.document
                    if variant == "long":
                        document = long_document(loaded, document, args.long)
                    for name, order in orders.items():
                        score = by_order[name]
                        for params in samples:
                            reply = answer(loaded, order(task.question, document), params)
                            passed = passes(task, reply)
                            score["passed"] += passed
                            score["answers"] += 1
                            score["replies"].append(
                                {"question": task.question, "passed": passed, "answer": reply}
                            )
                print(f"{variant} texts: done", file=sys.stderr, flush=True)
                results[variant] = by_order
        finally:
            loaded.close()
        services.history.close()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for variant, scored in results.items():
        scores = ", ".join(
            f"{name} {score['passed']}/{score['answers']}" for name, score in scored.items()
        )
        print(f"{variant} texts: {scores}")


if __name__ == "__main__":
    main()
