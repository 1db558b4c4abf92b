"""Split a model's streamed output into reasoning and answer, as it streams.

Thinking models write their reasoning before the answer, in one of a few ways: a `<think>…</think>`
block (Qwen3, QwQ, DeepSeek-R1, GLM-4.5, MiniMax-M2, Kimi-K2-Thinking, Nemotron) or a variant
(`<seed:think>` in Seed-OSS, `<|channel>thought…<channel|>` in Gemma 4), or gpt-oss's harmony
channels. The parser is pure (text in, typed pieces out) and each chunk costs work in proportion
to that chunk alone: nothing already streamed is scanned again.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from enum import Enum, StrEnum
from typing import NamedTuple, TypeAlias


class Kind(StrEnum):
    """What a piece of the output is."""

    REASONING = "reasoning"
    ANSWER = "answer"


class Piece(NamedTuple):
    """A run of output text of one kind."""

    kind: Kind
    text: str


@dataclass(frozen=True)
class TagFormat:
    """Reasoning in a block that opens the output: `<think>…</think>` and its variants.

    The block only opens as the first non-whitespace text of the output, so a model that does
    not reason, or an answer that mentions the tag, is passed through untouched.
    """

    open_tag: str
    close_tag: str
    starts_inside: bool = False
    """The generation prompt already opened the block, so the output begins as reasoning (a
    model that writes the open tag again anyway has it swallowed)."""

    @property
    def close_text(self) -> str:
        """Text that ends the reasoning the way the model would, for a budget to inject."""
        return f"\n{self.close_tag}\n\n"


@dataclass(frozen=True)
class HarmonyFormat:
    """gpt-oss's harmony: messages on channels, with the special tokens detokenized as text.

    The generation prompt ends with `<|start|>assistant`, so the output begins in a message
    header. analysis and commentary (tool preambles and calls) are reasoning, every other channel
    is answer; headers and markers reach neither.
    """

    @property
    def close_text(self) -> str:
        """Text that ends the reasoning the way the model would, for a budget to inject."""
        return "<|end|><|start|>assistant<|channel|>final<|message|>"


ReasoningFormat: TypeAlias = TagFormat | HarmonyFormat

THINK = TagFormat("<think>", "</think>")
SEED_THINK = TagFormat("<seed:think>", "</seed:think>")
GEMMA_THOUGHT = TagFormat("<|channel>thought", "<channel|>")
HARMONY = HarmonyFormat()

# After a tag the generation prompt opened, only whitespace or more markup (Seed-OSS's
# `<seed:cot_budget_reflect>`) may follow for the output to start inside the reasoning.
_ONLY_MARKUP = re.compile(r"(?:\s|<[^<>\s]*>)*")


def detect_format(template_source: str | None, generation_prompt_tail: str) -> ReasoningFormat:
    """The reasoning format a model writes, read from its chat template.

    `generation_prompt_tail` is the end of the rendered prompt when the assistant answers next
    (best: just what the generation prompt adds). A template that shows no sign of reasoning
    still gets `THINK`: its block only opens at the very start of the output, so plain models
    are unaffected while a thinking model behind a generic template is still understood.
    """
    source = template_source or ""
    if "<|channel|>" in source:
        return HARMONY
    variants = (SEED_THINK, GEMMA_THOUGHT)
    fmt = next((v for v in variants if v.open_tag in source), THINK)
    if _left_open(generation_prompt_tail, fmt):
        return replace(fmt, starts_inside=True)
    return fmt


def _left_open(tail: str, fmt: TagFormat) -> bool:
    opened = tail.rfind(fmt.open_tag)
    if opened == -1 or tail.rfind(fmt.close_tag) > opened:
        return False
    return _ONLY_MARKUP.fullmatch(tail, opened + len(fmt.open_tag)) is not None


class _State(Enum):
    START = "start"  # tags: nothing but whitespace yet; the open tag may be arriving
    TAGGED = "tagged"  # tags: inside the block, looking for the close tag
    CLOSED = "closed"  # tags: just closed; the close tag written once more is swallowed
    PLAIN = "plain"  # tags: after the block, or there was none: everything is answer
    HEADER = "header"  # harmony: reading a message header (or between messages)
    MESSAGE = "message"  # harmony: inside a message's content


_MESSAGE = "<|message|>"
_CHANNEL_MARK = "<|channel|>"
_ENDS = ("<|end|>", "<|return|>", "<|call|>")
_MARKERS = ("<|start|>", _CHANNEL_MARK, _MESSAGE, "<|constrain|>", *_ENDS)
_CHANNEL = re.compile(r"<\|channel\|>\s*(\w+)")
_REASONING_CHANNELS = ("analysis", "commentary")
# A header is a few words; past this it is not one, and is not kept growing.
_HEADER_LIMIT = 1024


class ReasoningParser:
    """Feed the output as it streams; get back the reasoning and answer pieces in it.

    Whitespace that opens the reasoning or the answer after it is dropped; the rest is kept
    byte-exact. Text that may be the start of a tag is held back until the next chunk tells,
    and `finish` returns it as text.
    """

    def __init__(self, fmt: ReasoningFormat) -> None:
        self._format = fmt
        self._out: list[Piece] = []
        self._pending = ""
        self._header = ""
        self._reasoning_seen = False
        self._answer_started = False
        if isinstance(fmt, TagFormat):
            self._state = _State.START
            self._kind = Kind.REASONING if fmt.starts_inside else Kind.ANSWER
            # Without a tag the output is a plain answer, kept byte-exact.
            self._strip = fmt.starts_inside
        else:
            self._state = _State.HEADER
            self._kind = Kind.ANSWER
            self._strip = True

    @property
    def in_reasoning(self) -> bool:
        """The model is writing reasoning now: a budget may close it with `close_text`."""
        return self._kind is Kind.REASONING and self._state is not _State.HEADER

    @property
    def answer_started(self) -> bool:
        """Some answer text has been returned."""
        return self._answer_started

    def feed(self, text: str) -> list[Piece]:
        """The pieces `text` completes, adjacent pieces of one kind merged."""
        self._out = []
        if self._state is _State.PLAIN:
            self._content(Kind.ANSWER, text)
        elif isinstance(self._format, TagFormat):
            self._feed_tags(self._pending + text, self._format)
        else:
            self._feed_harmony(self._pending + text)
        return self._out

    def finish(self) -> list[Piece]:
        """What was held back at the end of the stream: a partial tag there is text."""
        self._out = []
        if self._state is not _State.HEADER:
            self._content(self._kind, self._pending)
        self._pending = ""
        return self._out

    def _feed_tags(self, text: str, fmt: TagFormat) -> None:
        self._pending = ""
        if self._state is _State.CLOSED:
            # A model whose reasoning a budget closed may close it again itself.
            found, rest = _leading(text, fmt.close_tag)
            if found is None:
                self._pending = text
                return
            self._state = _State.PLAIN
            self._content(Kind.ANSWER, rest)
            return
        if self._state is _State.START:
            found, rest = _leading(text, fmt.open_tag)
            if found is None:
                self._pending = text
                return
            if not found and not fmt.starts_inside:
                self._state = _State.PLAIN
                self._content(Kind.ANSWER, text)
                return
            text = rest if found else text.lstrip()
            self._state = _State.TAGGED
            self._kind = Kind.REASONING
            self._strip = True
        closed = text.find(fmt.close_tag)
        if closed == -1:
            held = len(text) - _tag_start_at_end(text, fmt.close_tag)
            self._content(Kind.REASONING, text[:held])
            self._pending = text[held:]
            return
        self._content(Kind.REASONING, text[:closed])
        self._state = _State.CLOSED
        self._kind = Kind.ANSWER
        self._strip = True
        self._feed_tags(text[closed + len(fmt.close_tag) :], fmt)

    def _feed_harmony(self, text: str) -> None:
        self._pending = ""
        pos = 0
        while (at := text.find("<|", pos)) != -1:
            self._harmony_text(text[pos:at])
            marker = next((m for m in _MARKERS if text.startswith(m, at)), None)
            if marker is not None:
                self._harmony_marker(marker)
                pos = at + len(marker)
            elif any(m.startswith(text[at:]) for m in _MARKERS):
                self._pending = text[at:]
                return
            else:
                self._harmony_text("<|")
                pos = at + 2
        rest = text[pos:]
        if rest.endswith("<"):
            self._pending = "<"
            rest = rest[:-1]
        self._harmony_text(rest)

    def _harmony_text(self, text: str) -> None:
        if self._state is _State.MESSAGE:
            self._content(self._kind, text)
        elif len(self._header) < _HEADER_LIMIT:
            self._header += text

    def _harmony_marker(self, marker: str) -> None:
        if marker == _MESSAGE:
            # Inside a message a stray `<|message|>` carries nothing.
            if self._state is _State.HEADER:
                channels = _CHANNEL.findall(self._header)
                reasoning = bool(channels) and channels[-1] in _REASONING_CHANNELS
                self._kind = Kind.REASONING if reasoning else Kind.ANSWER
                self._state = _State.MESSAGE
                self._strip = True
            return
        if self._state is _State.MESSAGE:
            if marker == "<|constrain|>":
                return
            # A message ends at its end marker or, where a model skips that, at the next header.
            self._state = _State.HEADER
            self._header = ""
        elif marker == "<|start|>" or marker in _ENDS:
            self._header = ""
        # Kept in the header, where the channel name is read from.
        self._harmony_text(marker)

    def _content(self, kind: Kind, text: str) -> None:
        if self._strip:
            text = text.lstrip()
            if not text:
                return
            self._strip = False
            # Harmony may send several messages of one kind: keep them apart as paragraphs.
            seen = self._answer_started if kind is Kind.ANSWER else self._reasoning_seen
            if seen:
                text = "\n\n" + text
        if not text:
            return
        if kind is Kind.ANSWER:
            self._answer_started = True
        else:
            self._reasoning_seen = True
        if self._out and self._out[-1].kind is kind:
            self._out[-1] = Piece(kind, self._out[-1].text + text)
        else:
            self._out.append(Piece(kind, text))


def _leading(text: str, tag: str) -> tuple[bool | None, str]:
    """Whether `text` opens with `tag` after white space, and what follows it: None while the
    text so far may still become the tag; False (and `text`) when it does not."""
    head = text.lstrip()
    if head.startswith(tag):
        return True, head[len(tag) :]
    if tag.startswith(head):
        return None, text
    return False, text


def _tag_start_at_end(text: str, tag: str) -> int:
    """The length of the longest end of `text` that `tag` starts with (shorter than `tag`)."""
    at = text.find(tag[0], max(0, len(text) - len(tag) + 1))
    while at != -1:
        if tag.startswith(text[at:]):
            return len(text) - at
        at = text.find(tag[0], at + 1)
    return 0


def parse_cost(fmt: ReasoningFormat, text: str, chunk_chars: int = 4) -> float:
    """Mean seconds the parser takes per chunk when `text` streams `chunk_chars` at a time
    (about a token each), for benchmarks to compare with the time a token takes to decode."""
    chunks = [text[i : i + chunk_chars] for i in range(0, len(text), chunk_chars)]
    parser = ReasoningParser(fmt)
    started = time.perf_counter()
    for chunk in chunks:
        parser.feed(chunk)
    parser.finish()
    return (time.perf_counter() - started) / max(1, len(chunks))
