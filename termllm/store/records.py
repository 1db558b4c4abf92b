"""What the history store hands out: immutable snapshots of saved rows."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

ROLES: Final = ("system", "user", "assistant")
FINISH_REASONS: Final = ("stop", "length", "cancelled", "error")
# Most characters of a failed answer's error kept: the text can come from a model file or a
# server's reply, and a reason longer than this is not read, only scrolled past.
ERROR_LENGTH: Final = 2000


@dataclass(frozen=True)
class ConversationRecord:
    id: str
    title: str
    model: str | None
    system_prompt: str | None
    # Generation parameters as given to create_conversation (stored as JSON).
    params: dict[str, object]
    created_at: float
    # The time of the newest message (or of creation): what "most recent" means. Renaming a
    # conversation does not change it.
    updated_at: float
    message_count: int
    # The end of the branch the user chose to continue; None: the newest message's branch.
    leaf_id: str | None = None


@dataclass(frozen=True)
class MessageRecord:
    id: str
    conversation_id: str
    # The message this one answers or follows; siblings with one parent are branches.
    parent_id: str | None
    role: str
    content: str
    model: str | None
    created_at: float
    prompt_tokens: int | None
    completion_tokens: int | None
    # ttft_ms, prompt_tokens_per_s, decode_tokens_per_s, load_ms.
    timings: dict[str, float] | None
    # stop | length | cancelled | error, for assistant messages.
    finish_reason: str | None
    # Why the answer failed, at most ERROR_LENGTH characters: only with finish_reason "error".
    error: str | None = None
    # A thinking model's reasoning before the answer (never part of `content`), for assistant
    # messages; and how many of `completion_tokens` it took.
    reasoning: str | None = None
    reasoning_tokens: int | None = None


def bounded_error(text: str) -> str:
    """`text` in a form SQLite can store, cut to ERROR_LENGTH characters."""
    # Bytes decoded with surrogateescape leave lone surrogates, which SQLite's UTF-8 refuses:
    # the failed answer would then not be saved at all.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > ERROR_LENGTH:
        text = text[: ERROR_LENGTH - 1] + "…"
    return text


def finite_timings(timings: Mapping[str, float]) -> dict[str, float]:
    """The timings that were measured: NaN or an infinity (a rate over no time) is left out,
    as it has no JSON form and an export must stay JSON."""
    return {name: float(value) for name, value in timings.items() if math.isfinite(value)}


@dataclass(frozen=True)
class SearchHit:
    conversation_id: str
    conversation_title: str
    # None when the conversation's title matched rather than a message.
    message_id: str | None
    # The matching message's role, or "reasoning" for a match in an answer's reasoning.
    role: str | None
    # One line of the matching text, each match wrapped in "[" and "]".
    snippet: str
    # Smaller is better; hits come sorted by it.
    rank: float


@dataclass(frozen=True)
class ImportResult:
    imported: tuple[ConversationRecord, ...]
    # Conversations the history already held (by id), left as they are.
    skipped: tuple[str, ...]
