"""The answer being generated (and the reasoning before it, from a thinking model), shown in
whichever view displays its conversation (or none while the user looks elsewhere), drawn in
frames paced to leave the CPU to the model."""

from __future__ import annotations

import gc
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError

from textual.app import App
from textual.message import Message
from textual.timer import Timer

from termllm.domain import Completion
from termllm.engine.base import LoadReport
from termllm.services.turn import Reading, ReadingPace, TurnListener
from termllm.tui.widgets.answer import AnswerView
from termllm.tui.widgets.messages import ConversationView
from termllm.tui.widgets.thinking import ThinkingView

# The share of one core that drawing a streaming answer may take. On a small machine every
# millisecond the event loop spends on layout and painting is taken from llama.cpp's threads,
# and from the GIL that llama-cpp-python's sampling needs between tokens: the model slows down by
# about twice the share the screen takes (its threads wait for each other). A frame with its
# screen update costs about 5 ms on a 2-core laptop-class machine, so this means 4-5 frames a
# second there; a faster machine gets up to 15, a slow one or a slow terminal fewer, never
# fewer than one a second.
DRAW_BUDGET = 0.02
FASTEST_FRAME_S = 1 / 15
SLOWEST_FRAME_S = 1.0
PACE_WINDOW = 5


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


class UnshownReasoning(UnshownText):
    """Reasoning the worker produced that the screen has not taken yet, with the count of its
    pieces (about one a token) and when the first and the last arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.pieces = 0
        self.first_at: float | None = None
        self.last_at = 0.0

    def add(self, fragment: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._parts.append(fragment)
            self.pieces += 1
            if self.first_at is None:
                self.first_at = now
            self.last_at = now

    def seconds(self, *, ended: bool) -> float:
        """How long the model has been reasoning (ended: how long it reasoned)."""
        if self.first_at is None:
            return 0.0
        return (self.last_at if ended else time.monotonic()) - self.first_at


class FramePacer:
    """How long to wait before the next frame so that the event loop's CPU time, measured since
    the last frame (drawing, layout, input: all of it), stays within `budget` of one core.

    The pace follows the median of the last few intervals: one costly moment (the sidebar
    refreshed as the question is saved, a model's status shown) does not stall the frames for
    a second, while a machine or terminal on which every frame costs more gets fewer."""

    def __init__(self, budget: float = DRAW_BUDGET) -> None:
        self._budget = budget
        self._cpu_at_last_frame = time.thread_time()
        self._recent_cpu = deque([0.0] * PACE_WINDOW, maxlen=PACE_WINDOW)

    def next_delay(self) -> float:
        """Call from the event loop's thread: thread_time() counts that thread only."""
        now = time.thread_time()
        self._recent_cpu.append(now - self._cpu_at_last_frame)
        self._cpu_at_last_frame = now
        used = statistics.median(self._recent_cpu)
        return min(max(used / self._budget, FASTEST_FRAME_S), SLOWEST_FRAME_S)


class TextEnded(Message):
    """The model wrote the last token of an answer (posted from the worker's thread)."""

    def __init__(self, live: LiveAnswer) -> None:
        super().__init__()
        self.live = live


class LiveAnswer:
    """One answer while it is generated: the cancel flag and text buffer the worker writes to,
    everything taken so far, and the view showing it when its conversation is on screen.

    Each frame gives the view all the text that arrived since the last one: the view parses it
    (milliseconds for a whole long answer) and paints only what is on screen, so a frame costs
    about the same however far the model has run ahead of the screen. Reasoning goes the same
    way to a thinking section above the answer, mounted when the first of it arrives (an answer
    without reasoning has none); the section folds when the answer starts."""

    def __init__(self, app: App[None], view: AnswerView) -> None:
        self.cancel = threading.Event()
        self.unshown = UnshownText()
        self.unshown_reasoning = UnshownReasoning()
        self.conversation_id: str | None = None
        self.view: AnswerView | None = view
        self.thinking: ThinkingView | None = None
        self._app = app
        self._taken: list[str] = []
        self._reasoned: list[str] = []
        self._answering = False
        self._pacer = FramePacer()
        self._timer: Timer | None = app.set_timer(FASTEST_FRAME_S, self._frame)
        # A full collection takes 20-40 ms once a few answers are on screen: a visible stall in
        # the middle of a stream. Streaming makes few reference cycles, so collection waits
        # for the answer's end, as Textual does for smooth scrolling (App.PAUSE_GC_ON_SCROLL).
        self._paused_gc = gc.isenabled()
        gc.disable()
        self._pace = ReadingPace()
        self._reading: Reading | None = None

    @property
    def text(self) -> str:
        """The answer so far, as far as the screen has taken it."""
        return "".join(self._taken)

    @property
    def reasoning(self) -> str:
        """The reasoning so far, as far as the screen has taken it."""
        return "".join(self._reasoned)

    def show_in(self, view: AnswerView) -> None:
        """Continue in `view` (the conversation is back on screen), with the text so far."""
        self._take()
        self._take_reasoning()
        self.view = view
        view.show_reading(_reading_line(self._reading))
        if self.reasoning.strip():
            self._add_thinking(self.reasoning)
        self._show(self.text)

    def show_reading(self, read: int, total: int) -> Reading | None:
        """How far reading a long prompt got, in the answer's place until the answer starts
        (None: nothing to show, a short prompt or the whole prompt read)."""
        self._reading = self._pace.update(read, total)
        if self.view is not None and self.view.is_attached:
            self.view.show_reading(_reading_line(self._reading))
        return self._reading

    def hide(self) -> None:
        self.view = None
        self.thinking = None

    def draw_rest(self) -> None:
        """The model has written its last token: draw what is left now, not at the next frame."""
        self._stop_frames()
        self._draw()

    async def finish(self, completion: Completion) -> None:
        """Draw the last tokens at once, then render the whole answer once more in full."""
        self.draw_rest()
        self._resume_gc()
        self._end_thinking(fold=False)
        if self.thinking is not None and self.thinking.is_attached:
            self._settle_thinking(self.thinking, completion)
        if self.view is not None and self.view.is_attached:
            await self.view.finish(
                completion.content, completion.finish_reason.value, completion.error
            )

    async def fail(self, message: str) -> None:
        self._stop_frames()
        self._resume_gc()
        self._end_thinking(fold=False)
        if self.view is not None and self.view.is_attached:
            await self.view.finish("", "error", message)

    def _frame(self) -> None:
        self._draw()
        if self._timer is not None:
            self._timer = self._app.set_timer(self._pacer.next_delay(), self._frame)

    def _stop_frames(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _resume_gc(self) -> None:
        if self._paused_gc:
            self._paused_gc = False
            gc.enable()

    def _draw(self) -> None:
        # The answer first: once a piece of it is there, all the reasoning before it is too.
        text = self._take()
        if self.unshown_reasoning.pieces and not self._answering:
            self._show_reasoning(self._take_reasoning())
            if text:
                self._answering = True
                self._end_thinking(fold=True)
        self._show(text)

    def _take(self) -> str:
        """The text the worker wrote since the last frame."""
        text = self.unshown.take()
        if text:
            self._taken.append(text)
        return text

    def _take_reasoning(self) -> str:
        text = self.unshown_reasoning.take()
        if text:
            self._reasoned.append(text)
        return text

    def _show(self, text: str) -> None:
        if text and self.view is not None and self.view.is_attached:
            self.view.add_fragment(text)

    def _show_reasoning(self, text: str) -> None:
        if self.view is None or not self.view.is_attached:
            return
        if self.thinking is not None:
            reasoning = self.unshown_reasoning
            self.thinking.stream(text, reasoning.pieces, reasoning.seconds(ended=False))
        elif self.reasoning.strip():
            # Not before: an empty block (what some models write with thinking off) shows
            # nothing.
            self._add_thinking(self.reasoning)

    def _add_thinking(self, so_far: str) -> None:
        """A section above the view for the reasoning, holding `so_far`."""
        assert self.view is not None
        reasoning = self.unshown_reasoning
        thinking = ThinkingView(
            so_far,
            streaming=not self._answering,
            tokens=reasoning.pieces,
            seconds=reasoning.seconds(ended=self._answering),
        )
        parent = self.view.parent
        if isinstance(parent, ConversationView):
            self.thinking = parent.add_thinking(self.view, thinking)

    def _settle_thinking(self, thinking: ThinkingView, completion: Completion) -> None:
        """Show the reasoning as it is saved, as the conversation will show it when opened
        again: trimmed, or (blank) no section at all."""
        if completion.reasoning.strip():
            thinking.settle(completion.reasoning, completion.usage.reasoning_tokens)
            return
        thinking.remove()
        self.thinking = None
        if self.view is not None:
            self.view.remove_class("thought")

    def _end_thinking(self, *, fold: bool) -> None:
        if self.thinking is not None and self.thinking.is_streaming:
            reasoning = self.unshown_reasoning
            self.thinking.end(reasoning.pieces, reasoning.seconds(ended=True), fold=fold)


def _reading_line(reading: Reading | None) -> str | None:
    return f"reading the prompt: {reading}" if reading is not None else None


class LiveTurn(TurnListener):
    """A turn as the app shows it, heard on the worker's thread. The answer's text goes to the
    live answer's buffer without waiting for the screen; the rare events run on the event loop,
    and the worker waits for them."""

    def __init__(
        self,
        app: App[None],
        live: LiveAnswer,
        on_saved: Callable[[str, LiveAnswer], object],
        on_model: Callable[[str, LoadReport | None], object],
        on_reading: Callable[[LiveAnswer, int, int], object],
    ) -> None:
        self._app = app
        self._live = live
        self._on_saved = on_saved
        self._on_model = on_model
        self._on_reading = on_reading
        self._add = live.unshown.add
        self._add_reasoning = live.unshown_reasoning.add

    def show(self, callback: Callable[..., object], *args: object, **kwargs: object) -> None:
        """Run `callback` on the event loop and wait for it."""
        try:
            self._app.call_from_thread(callback, *args, **kwargs)
        except (RuntimeError, CancelledError):
            # The app has closed (or is closing, which cancels the call): stop generating;
            # the turn still saves the answer.
            self._live.cancel.set()

    def saved(self, conversation_id: str) -> None:
        self.show(self._on_saved, conversation_id, self._live)

    def loading(self, model_ref: str) -> None:
        self.show(self._on_model, model_ref, None)

    def loaded(self, model_ref: str, report: LoadReport) -> None:
        self.show(self._on_model, model_ref, report)

    def warning(self, message: str) -> None:
        self.show(self._app.notify, message, severity="warning", timeout=10)

    def reading(self, read: int, total: int) -> None:
        # A few times a prompt at most: once a batch of 512 tokens is read.
        self.show(self._on_reading, self._live, read, total)

    def reasoning(self, piece: str) -> None:
        self._add_reasoning(piece)

    def text(self, piece: str) -> None:
        self._add(piece)

    def ended(self) -> None:
        # Posted, not shown: the worker must not wait for the screen before saving.
        self._app.post_message(TextEnded(self._live))
