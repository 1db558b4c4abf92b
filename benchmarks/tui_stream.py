"""The chat TUI while an answer streams, driven headless through the real ChatApp (`run_test`).

fast    A scripted engine emits a 4,000-token Markdown answer with fenced code blocks as fast as
        it can. A probe task on the event loop asks to wake every 5 ms and records how late it
        wakes (the longest event-loop stall; target ≤ 50 ms), and the time from the engine's
        last token to the screen update that shows it (target < 100 ms) and to the final full
        render of the answer.
paced   The same kind of answer at a fixed rate (default 100 tok/s, no probe): the CPU time of
        the whole process minus the generating thread's, as a % of one core, is what the UI
        costs per second of streaming.
real    The starter model: `termllm ask --json` and the TUI on the same prompt, settings and
        threads, alternating runs; the decode tokens/s each reports and their ratio (target
        ≥ 0.95). The TUI's number is the one its status bar shows.

Headless Textual skips turning screen updates into terminal bytes; this benchmark does that step
itself, so its CPU cost counts as it would in a terminal.

Run: .venv/bin/python benchmarks/tui_stream.py [--json] [--tokens 4000] [--rate 100]
     [--paced-tokens 1000] [--real-runs 9] [--real-tokens 256] [--threads 2] [--no-real]
     [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starter import ask_json, starter_model

SIZE = (120, 40)
PROBE_PERIOD_S = 0.005
REAL_PROMPT = (
    "Explain how to read a CSV file in Python. Show two code examples, one with the csv module "
    "and one with pandas, and explain each step."
)

SECTION = """## Step {n}: reading the data

The function below reads a **CSV file** line by line, keeps the rows that have a value in the
`amount` column and returns their total. It never loads the whole file at once, so it works on
files larger than memory.

- open the file with `newline=""` so the csv module sees the real line endings
- skip rows whose amount is empty
- convert with `Decimal` to avoid rounding errors

```python
import csv
from decimal import Decimal


def total_{n}(path: str) -> Decimal:
    total = Decimal(0)
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            amount = row.get("amount", "").strip()
            if amount:
                total += Decimal(amount)
    return total


print(total_{n}("payments.csv"))
```

Step {n} returns a `Decimal`; format it with `f"{{value:.2f}}"` when you show it to a user.

"""


def markdown_answer(tokens: int) -> list[str]:
    """A Markdown answer cut into pieces of up to 4 characters, as a tokenizer would."""
    pieces: list[str] = []
    section = 0
    while len(pieces) < tokens:
        section += 1
        pieces.extend(re.findall(r"\s*\S{1,4}|\s+", SECTION.format(n=section)))
    return pieces[:tokens]


# A benchmark answer takes seconds; one that takes this long has failed.
ANSWER_TIMEOUT_S = 300


@dataclass
class BenchModel:
    """A loaded model for the Engine protocol that streams a fixed answer at a chosen rate."""

    answer: list[str]
    rate: float | None = None
    last_token_at: float = 0.0
    started_at: float = 0.0
    thread_cpu_s: float = 0.0
    process_cpu_s: float = 0.0
    produced: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def report(self) -> Any:
        from termllm.engine.base import LoadReport, Placement

        return LoadReport(4096, 2, Placement(0, 2, "CPU", "bench"), "bench", load_ms=1.0)

    def count_prompt_tokens(self, messages: Sequence[Any], think: Any = None) -> int:
        return sum(len(m.content.split()) + 4 for m in messages)

    def truncate(self, text: str, max_tokens: int) -> str:
        return " ".join(text.split()[:max_tokens])

    # No KV cache to keep: the conversation-state calls are no-ops.
    state_identity = "bench"

    def shared_prefix(
        self, messages: Sequence[Any], tokens: Sequence[int] | None, think: Any = None
    ) -> int:
        return 0

    def save_state(self) -> None:
        return None

    def restore_state(self, state: Any) -> bool:
        return False

    def clear_state(self) -> None:
        return None

    def speed_test(self, prompt_tokens: int, generated_tokens: int) -> Any:
        raise NotImplementedError("the TUI benchmark never runs `termllm bench`")

    def stream_chat(
        self, messages: Sequence[Any], params: Any, cancel: threading.Event
    ) -> Iterator[Any]:
        from termllm.domain import Completion, FinishReason, TextChunk, Timings, Usage

        cpu_started, process_started = time.thread_time(), time.process_time()
        self.started_at = started = time.perf_counter()
        produced: list[str] = []
        for index, piece in enumerate(self.answer):
            if cancel.is_set():
                break
            if self.rate:
                delay = started + index / self.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            else:
                time.sleep(0)  # native decoding releases the GIL between tokens; so does this
            produced.append(piece)
            self.last_token_at = time.perf_counter()
            yield TextChunk(piece)
        elapsed = self.last_token_at - started
        # Both over the same span, from the first token to the last: the rest of the process
        # is the UI drawing the answer while it streams.
        self.thread_cpu_s = time.thread_time() - cpu_started
        self.process_cpu_s = time.process_time() - process_started
        self.produced = len(produced)
        speed = (len(produced) - 1) / elapsed if elapsed > 0 else 0.0
        yield Completion(
            content="".join(produced),
            finish_reason=FinishReason.CANCELLED if cancel.is_set() else FinishReason.STOP,
            usage=Usage(10, len(produced)),
            timings=Timings(0.0, 0.0, 0.0, speed),
        )
        self.done.set()

    def close(self) -> None:
        return None


@dataclass
class BenchEngine:
    model: BenchModel

    def load(self, request: Any) -> BenchModel:
        return self.model


class Screen:
    """Every screen update the app makes, turned into terminal bytes as a real driver would."""

    def __init__(self, app: Any) -> None:
        from textual._compositor import CompositorUpdate

        self.updates: list[float] = []
        original, console = app._display, app.console

        def display(screen: Any, renderable: Any) -> None:
            if isinstance(renderable, CompositorUpdate) and not app._batch_count:
                renderable.render_segments(console)
                self.updates.append(time.perf_counter())
            original(screen, renderable)

        app._display = display

    def first_update_after(self, moment: float) -> float | None:
        return next((t for t in self.updates if t >= moment), None)


class Mounted:
    """When the answer's painted lines changed, and how much of the answer they held then: the
    app's streamed fragments and its final full render (`finish`) both end here."""

    def __init__(self) -> None:
        from termllm.tui.widgets.answer import AnswerView

        self.events: list[tuple[float, int, str]] = []
        add_fragment, finish = AnswerView.add_fragment, AnswerView.finish

        def added(view: Any, fragment: str) -> None:
            add_fragment(view, fragment)
            self.events.append((time.perf_counter(), len(view.source), "append"))

        async def finished(view: Any, *args: Any) -> None:
            await finish(view, *args)
            self.events.append((time.perf_counter(), len(view.source), "finish"))

        AnswerView.add_fragment = added  # type: ignore[method-assign,assignment]
        AnswerView.finish = finished  # type: ignore[method-assign,assignment]

    def first(self, length: int, kind: str | None = None) -> float | None:
        return next(
            (t for t, n, k in self.events if n >= length and (kind is None or k == kind)), None
        )


async def stream_once(
    model: BenchModel, probe: bool, profile: cProfile.Profile | None
) -> dict[str, float]:
    from termllm.app import build_services
    from termllm.config import load_config
    from termllm.tui.app import ChatApp
    from termllm.tui.widgets.prompt import PromptInput

    services = build_services(load_config(), engine_factory=lambda: BenchEngine(model))
    app = ChatApp(services)
    mounted = Mounted()
    lateness: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        screen = Screen(app)
        await app.workers.wait_for_complete()
        await pilot.pause()
        stop = asyncio.Event()

        async def probe_loop() -> None:
            while not stop.is_set():
                asked = time.perf_counter()
                await asyncio.sleep(PROBE_PERIOD_S)
                lateness.append(time.perf_counter() - asked - PROBE_PERIOD_S)

        probe_task = asyncio.create_task(probe_loop()) if probe else None
        app.query_one(PromptInput).insert("Show me how to total a CSV column.")
        if profile:
            profile.enable()
        await pilot.press("enter")
        if not await asyncio.to_thread(model.done.wait, ANSWER_TIMEOUT_S):
            raise SystemExit("the answer never finished: see the log above")
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        if profile:
            profile.disable()
        stop.set()
        if probe_task:
            await probe_task
        answer_length = len("".join(model.answer[: model.produced]))
        shown = mounted.first(answer_length)
        final = mounted.first(answer_length, "finish")
        shown_at = screen.first_update_after(shown) if shown else None
        final_at = screen.first_update_after(final) if final else None
    services.history.close()
    streaming_s = model.last_token_at - model.started_at
    result = {
        "tokens": float(model.produced),
        "engine_tokens_per_s": (model.produced - 1) / streaming_s if streaming_s > 0 else 0.0,
        "last_token_to_screen_ms": _ms(shown_at, model.last_token_at),
        "last_token_to_final_render_ms": _ms(final_at, model.last_token_at),
        "screen_updates": float(len(screen.updates)),
        "ui_cpu_s": model.process_cpu_s - model.thread_cpu_s,
        "streaming_s": streaming_s,
    }
    if probe:
        result["max_stall_ms"] = max(lateness) * 1000
        result["p99_stall_ms"] = statistics.quantiles(lateness, n=100)[98] * 1000
    return result


def _ms(later: float | None, earlier: float) -> float:
    return (later - earlier) * 1000 if later is not None else float("nan")


def real_env(tokens: int, threads: int) -> dict[str, str]:
    return {
        "TERMLLM_GENERATION_TEMPERATURE": "0",
        "TERMLLM_GENERATION_SEED": "7",
        "TERMLLM_GENERATION_MAX_TOKENS": str(tokens),
        "TERMLLM_MODELS_THREADS": str(threads),
        "TERMLLM_MODELS_CONTEXT_SIZE": "2048",
    }


def real_ask(model: Path) -> dict[str, float]:
    return ask_json(["-m", str(model), REAL_PROMPT])


async def real_tui(model: Path) -> dict[str, float]:
    from termllm.app import build_services
    from termllm.config import load_config
    from termllm.tui.app import ChatApp
    from termllm.tui.widgets.prompt import PromptInput
    from termllm.tui.widgets.status import StatusBar

    services = build_services(load_config())
    app = ChatApp(services, model_ref=str(model))
    async with app.run_test(size=SIZE) as pilot:
        Screen(app)
        await app.workers.wait_for_complete()
        app.query_one(PromptInput).insert(REAL_PROMPT)
        await pilot.press("enter")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        speed = app.query_one(StatusBar).info.tokens_per_s or 0.0
        assert app.conversation_id is not None
        _, records = services.history.transcript(app.conversation_id)
        tokens = records[-1].completion_tokens or 0
    services.history.close()
    return {"tokens": float(tokens), "decode_tokens_per_s": speed}


def run_real(runs: int, tokens: int, threads: int) -> dict[str, Any]:
    model = starter_model()
    os.environ.update(real_env(tokens, threads))
    ask, tui = [], []
    for run in range(runs):
        # Alternate which goes first, so that neither always runs on a machine just warmed
        # (or disturbed) by the other.
        if run % 2:
            tui.append(asyncio.run(real_tui(model)))
            ask.append(real_ask(model))
        else:
            ask.append(real_ask(model))
            tui.append(asyncio.run(real_tui(model)))
        print(
            f"real run {run + 1}: ask {ask[-1]['decode_tokens_per_s']:.1f} tok/s"
            f" ({ask[-1]['tokens']:.0f} tokens), TUI {tui[-1]['decode_tokens_per_s']:.1f} tok/s"
            f" ({tui[-1]['tokens']:.0f} tokens)",
            file=sys.stderr,
        )
    ask_speed = statistics.median(r["decode_tokens_per_s"] for r in ask)
    tui_speed = statistics.median(r["decode_tokens_per_s"] for r in tui)
    # Each TUI run against the ask run just before it: on a shared machine the load changes
    # from minute to minute, and the median of paired ratios shrugs off a disturbed pair.
    ratios = [
        t["decode_tokens_per_s"] / a["decode_tokens_per_s"] for a, t in zip(ask, tui, strict=True)
    ]
    return {
        "runs": runs,
        "max_tokens": tokens,
        "ask_tokens_per_s": ask_speed,
        "tui_tokens_per_s": tui_speed,
        "ratio": statistics.median(ratios),
        "ratios": ratios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--tokens", type=int, default=4000, help="fast answer length")
    parser.add_argument("--rate", type=float, default=100.0, help="paced tokens per second")
    parser.add_argument("--paced-tokens", type=int, default=1000, help="paced answer length")
    parser.add_argument("--real-runs", type=int, default=9)
    parser.add_argument("--real-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="threads of the starter-model runs")
    parser.add_argument("--no-real", action="store_true", help="skip the starter-model runs")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the fast run here")
    args = parser.parse_args()
    os.environ["TERMLLM_HOME"] = tempfile.mkdtemp(prefix="termllm-bench-")
    profile = cProfile.Profile() if args.profile else None
    fast = asyncio.run(stream_once(BenchModel(markdown_answer(args.tokens)), True, profile))
    if profile and args.profile:
        profile.dump_stats(args.profile)
    paced_model = BenchModel(markdown_answer(args.paced_tokens), rate=args.rate)
    paced = asyncio.run(stream_once(paced_model, False, None))
    paced["ui_cpu_percent_of_core"] = 100 * paced["ui_cpu_s"] / paced["streaming_s"]
    report: dict[str, Any] = {"fast": fast, "paced": paced}
    if not args.no_real:
        report["real"] = run_real(args.real_runs, args.real_tokens, args.threads)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"fast: {fast['tokens']:.0f} tokens at {fast['engine_tokens_per_s']:.0f} tok/s")
    stall, p99 = fast["max_stall_ms"], fast["p99_stall_ms"]
    print(f"  longest event-loop stall: {stall:.1f} ms (p99 {p99:.1f} ms; target <= 50)")
    print(f"  last token to screen:     {fast['last_token_to_screen_ms']:.1f} ms (target < 100)")
    print(f"  last token to final full render: {fast['last_token_to_final_render_ms']:.1f} ms")
    print(f"paced: {paced['tokens']:.0f} tokens at {args.rate:.0f} tok/s")
    print(f"  UI CPU while streaming: {paced['ui_cpu_percent_of_core']:.1f} % of one core")
    print(f"  screen updates: {paced['screen_updates'] / paced['streaming_s']:.1f} per second")
    if "real" in report:
        real = report["real"]
        print(f"real: starter model, {real['max_tokens']} tokens max, {real['runs']} runs")
        print(f"  termllm ask: {real['ask_tokens_per_s']:.1f} tok/s (median)")
        print(f"  TUI:         {real['tui_tokens_per_s']:.1f} tok/s (median)")
        print(f"  ratio (median of paired runs): {real['ratio']:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
