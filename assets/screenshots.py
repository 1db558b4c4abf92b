"""Regenerate the README's screenshots from the real app and the real starter model.

Run: .venv/bin/python assets/screenshots.py   (writes assets/tui-*.svg; about a minute)

The app runs headless with a temporary TERMLLM_HOME and greedy sampling, so the pictures show a
fresh install answering two questions, then the help screen and the model picker.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from termllm.app import build_services
from termllm.config import load_config
from termllm.tui.app import ChatApp
from termllm.tui.widgets.prompt import PromptInput

HERE = Path(__file__).resolve().parent
SIZE = (120, 36)
QUESTIONS = (
    "What is a GGUF file? Answer in two sentences.",
    "Write a Python function that checks whether a word is a palindrome.",
)


async def capture() -> None:
    app = ChatApp(build_services(load_config()))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        for index, question in enumerate(QUESTIONS):
            if index:
                await app.action_new_conversation()
            app.query_one(PromptInput).insert(question)
            await pilot.press("enter")
            await pilot.pause(0.2)
            await app.workers.wait_for_complete()
            await pilot.pause(1.5)
        app.save_screenshot("tui-chat.svg", str(HERE))
        await pilot.press("f1")
        await pilot.pause(0.5)
        app.save_screenshot("tui-help.svg", str(HERE))
        await pilot.press("escape")
        await pilot.press("f3")
        await pilot.pause(1.0)
        app.save_screenshot("tui-models.svg", str(HERE))
    app.services.history.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="termllm-screens-") as home:
        os.environ.update(
            TERMLLM_HOME=home,
            TERMLLM_GENERATION_TEMPERATURE="0",
            TERMLLM_GENERATION_MAX_TOKENS="160",
        )
        asyncio.run(capture())
    print(f"wrote {', '.join(sorted(p.name for p in HERE.glob('tui-*.svg')))}")


if __name__ == "__main__":
    main()
