"""Alternatives in a conversation: answers to the same question (regenerated) and versions of a
question (edited) are siblings under one parent; the user flips between them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from termllm.domain import Message, Role

if TYPE_CHECKING:
    from termllm.store import ConversationRecord, MessageRecord


@dataclass(frozen=True)
class Exchange:
    """A saved question, waiting for its answer."""

    conversation_id: str
    question_id: str


@dataclass(frozen=True)
class Alternatives:
    """A message's siblings with its role, oldest first, and which one is on the current
    branch."""

    messages: tuple[MessageRecord, ...]
    index: int

    @property
    def current(self) -> MessageRecord:
        return self.messages[self.index]


@dataclass(frozen=True)
class BranchEntry:
    """One message of the current branch, the `index`-th of its `count` alternatives."""

    message: MessageRecord
    index: int
    count: int


@dataclass(frozen=True)
class PendingAnswer:
    """A saved question waiting for an answer, with the branch that leads to it (the question
    last, the system prompt left out)."""

    conversation: ConversationRecord
    messages: tuple[Message, ...]
    exchange: Exchange


def chat_messages(records: Sequence[MessageRecord]) -> tuple[Message, ...]:
    """What the model is sent of a branch; the system prompt comes from the conversation."""
    return tuple(
        Message(Role(record.role), record.content, reasoning=record.reasoning)
        for record in records
        if record.role != Role.SYSTEM.value
    )


def branch_entries(
    every: Sequence[MessageRecord], branch: Sequence[MessageRecord]
) -> list[BranchEntry]:
    """Each message of `branch` with its place among the siblings found in `every`."""
    groups: dict[tuple[str | None, str], list[str]] = {}
    for message in every:
        groups.setdefault((message.parent_id, message.role), []).append(message.id)
    entries = []
    for message in branch:
        group = groups[(message.parent_id, message.role)]
        entries.append(BranchEntry(message, group.index(message.id), len(group)))
    return entries


def last_question(branch: Sequence[MessageRecord]) -> MessageRecord | None:
    """The newest user message of a branch: what regenerating answers again, and what editing
    changes."""
    return next((m for m in reversed(branch) if m.role == Role.USER.value), None)
