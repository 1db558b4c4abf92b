"""The answer being generated, shown in whichever view displays its conversation (or none while
the user looks elsewhere), drawn in frames paced to leave the CPU to the model."""

from __future__ import annotations

import asyncio
import threading
import time

from textual.app import App
from textual.timer import Timer

from termllm.domain import Completion
from termllm.tui.widgets.messages import AnswerView

# The share of one core that drawing a streaming answer may take. On a small machine every
# millisecond the event loop spends on layout and painting is taken from llama.cpp's threads,
# and from the GIL that llama-cpp-python's sampling needs between tokens: the model slows down by
# about the share the screen takes. A frame costs 10-60 ms of Textual layout and painting, so this
# means a few frames a second, and never fewer than one.
DRAW_BUDGET = 0.04
FASTEST_FRAME_S = 1 / 15
SLOWEST_FRAME_S = 1.0
# The most text one frame draws: each new Markdown block costs milliseconds to build and mount,
# so a burst (a fast engine, or the view coming back on screen) is drawn over several frames
# rather than in one long stall. A model at 100 tok/s writes about 450 characters a second.
FRAME_CHARS = 500


class UnshownText:
    """Answer text the worker produced that the screen has not taken yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []

    def add(self, fragment: str) -> None:
        with self._lock:
            self._parts.append(fragment)

    def take(self) -> str:
        with self._lock:
            text = "".join(self._parts)
            self._parts.clear()
            return text


class FramePacer:
    """How long to wait before the next frame so that the event loop's CPU time, measured since
    the last frame (drawing, layout, input: all of it), stays within `budget` of one core."""

    def __init__(self, budget: float = DRAW_BUDGET) -> None:
        self._budget = budget
        self._cpu_at_last_frame = time.thread_time()

    def next_delay(self) -> float:
        """Call from the event loop's thread: thread_time() counts that thread only."""
        now = time.thread_time()
        used, self._cpu_at_last_frame = now - self._cpu_at_last_frame, now
        return min(max(used / self._budget, FASTEST_FRAME_S), SLOWEST_FRAME_S)


class LiveAnswer:
    """One answer while it is generated: the cancel flag and text buffer the worker writes to,
    everything taken so far, and the view showing it when its conversation is on screen."""

    def __init__(self, app: App[None], view: AnswerView) -> None:
        self.cancel = threading.Event()
        self.unshown = UnshownText()
        self.conversation_id: str | None = None
        self.view: AnswerView | None = view
        self._app = app
        self._taken: list[str] = []
        self._undrawn = ""
        self._pacer = FramePacer()
        self._timer: Timer | None = app.set_timer(FASTEST_FRAME_S, self._frame)

    @property
    def text(self) -> str:
        """The answer so far, as far as the screen has taken it."""
        return "".join(self._taken)

    async def show_in(self, view: AnswerView) -> None:
        """Continue in `view` (the conversation is back on screen), starting with the text so
        far in one piece."""
        self._take()
        self.view = view
        self._undrawn = self.text
        await self._draw()

    def hide(self) -> None:
        self.view = None
        self._undrawn = ""

    async def finish(self, completion: Completion) -> None:
        """Draw the last tokens at once, then render the whole answer once more in full."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._take()
        while self._undrawn and self.view is not None:
            await self._draw()
            await asyncio.sleep(0)
        if self.view is not None and self.view.is_attached:
            await self.view.finish(
                completion.content, completion.finish_reason.value, completion.error
            )

    async def fail(self, message: str) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self.view is not None and self.view.is_attached:
            await self.view.finish("", "error", message)

    async def _frame(self) -> None:
        self._take()
        await self._draw()
        if self._timer is not None:
            # Behind after a burst: catch up at full frame rate, a bounded piece at a time.
            delay = self._pacer.next_delay()
            self._timer = self._app.set_timer(
                FASTEST_FRAME_S if self._undrawn else delay, self._frame
            )

    def _take(self) -> None:
        text = self.unshown.take()
        if text:
            self._taken.append(text)
            if self.view is not None:
                self._undrawn += text

    async def _draw(self) -> None:
        piece, self._undrawn = self._undrawn[:FRAME_CHARS], self._undrawn[FRAME_CHARS:]
        if piece and self.view is not None and self.view.is_attached:
            await self.view.add_fragment(piece)
