"""The JSON export of one conversation, and the checks an export must pass to be imported.

An export holds every field of the conversation and of each message, parent links included, in
creation order. Imports get new ids (so nothing is ever overwritten) and keep the timestamps.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Final

from termllm.errors import UsageError
from termllm.store.records import (
    FINISH_REASONS,
    ROLES,
    ConversationRecord,
    MessageRecord,
    bounded_error,
)

EXPORT_FORMAT: Final = "termllm.conversation"
EXPORT_VERSION: Final = 1


def to_export(
    conversation: ConversationRecord, messages: Sequence[MessageRecord]
) -> dict[str, object]:
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "conversation": asdict(conversation),
        "messages": [asdict(message) for message in messages],
    }


class ExportFormatError(UsageError):
    """The data is not a conversation export this termllm can import."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"not an importable termllm conversation: {reason}")


def parse_export(data: Mapping[str, object]) -> tuple[ConversationRecord, list[MessageRecord]]:
    """The conversation and messages of an export, with their exported ids, fully checked.

    `message_count` and each message's `conversation_id` are redundant and ignored; a message's
    parent must come before it, which also rules out cycles. `leaf_id` (the chosen branch) may
    be missing, as in exports from before branches could be chosen, and so may a message's
    `error` (why an answer failed), as in exports from before it was kept.
    """
    if not isinstance(data, Mapping):
        raise ExportFormatError("expected a JSON object")
    if data.get("format") != EXPORT_FORMAT:
        raise ExportFormatError(f"'format' must be {EXPORT_FORMAT!r}")
    version = data.get("version")
    if version != EXPORT_VERSION or isinstance(version, bool):
        raise ExportFormatError(
            f"export version {version!r} is not {EXPORT_VERSION} (a newer termllm may read it)"
        )
    fields = _Fields(data.get("conversation"), "conversation")
    raw_messages = data.get("messages")
    if not isinstance(raw_messages, list):
        raise ExportFormatError("'messages' must be a list")
    conversation_id = fields.text("id")
    messages: list[MessageRecord] = []
    seen: set[str] = set()
    for n, raw in enumerate(raw_messages):
        message = _parse_message(_Fields(raw, f"messages[{n}]"), conversation_id, seen)
        seen.add(message.id)
        messages.append(message)
    leaf_id = fields.optional_text("leaf_id")
    if leaf_id is not None and leaf_id not in seen:
        raise ExportFormatError(f"conversation.leaf_id {leaf_id!r} is not one of its messages")
    conversation = ConversationRecord(
        id=conversation_id,
        title=fields.text("title"),
        model=fields.optional_text("model"),
        system_prompt=fields.optional_text("system_prompt"),
        params=fields.json_object("params"),
        created_at=fields.timestamp("created_at"),
        updated_at=fields.timestamp("updated_at"),
        message_count=len(messages),
        leaf_id=leaf_id,
    )
    return conversation, messages


def _parse_message(fields: _Fields, conversation_id: str, seen: set[str]) -> MessageRecord:
    message_id = fields.text("id")
    if message_id in seen:
        raise ExportFormatError(f"{fields.where}.id {message_id!r} is used twice")
    parent_id = fields.optional_text("parent_id")
    if parent_id is not None and parent_id not in seen:
        raise ExportFormatError(
            f"{fields.where}.parent_id {parent_id!r} is not a message before it"
        )
    role = fields.choice("role", ROLES)
    finish_reason = fields.optional_choice("finish_reason", FINISH_REASONS)
    if finish_reason is not None and role != "assistant":
        raise ExportFormatError(f"{fields.where}.finish_reason is only for assistant messages")
    error = fields.optional_text("error")
    if error is not None and finish_reason != "error":
        raise ExportFormatError(
            f"{fields.where}.error is only for answers whose finish_reason is 'error'"
        )
    return MessageRecord(
        id=message_id,
        conversation_id=conversation_id,
        parent_id=parent_id,
        role=role,
        content=fields.text("content"),
        model=fields.optional_text("model"),
        created_at=fields.timestamp("created_at"),
        prompt_tokens=fields.count("prompt_tokens"),
        completion_tokens=fields.count("completion_tokens"),
        timings=fields.timings("timings"),
        finish_reason=finish_reason,
        # An export is text from anywhere: held to the bound of a failure saved here.
        error=None if error is None else bounded_error(error),
    )


class _Fields:
    """Typed reads of one JSON object, each failure naming the field."""

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, Mapping):
            raise ExportFormatError(f"{where} must be an object")
        self._raw = raw
        self.where = where

    def _fail(self, key: str, expected: str) -> ExportFormatError:
        return ExportFormatError(f"{self.where}.{key} must be {expected}")

    def text(self, key: str) -> str:
        value = self._raw.get(key)
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self._raw.get(key)
        if value is not None and not isinstance(value, str):
            raise self._fail(key, "a string or null")
        return value

    def choice(self, key: str, allowed: Sequence[str]) -> str:
        value = self._raw.get(key)
        for option in allowed:
            if value == option:
                return option
        raise self._fail(key, "one of " + ", ".join(allowed))

    def optional_choice(self, key: str, allowed: Sequence[str]) -> str | None:
        return None if self._raw.get(key) is None else self.choice(key, allowed)

    def timestamp(self, key: str) -> float:
        value = self._raw.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self._fail(key, "a number of seconds since 1970")
        return float(value)

    def count(self, key: str) -> int | None:
        value = self._raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._fail(key, "a whole number of tokens or null")
        return value

    def json_object(self, key: str) -> dict[str, object]:
        value = self._raw.get(key)
        if not isinstance(value, Mapping):
            raise self._fail(key, "an object")
        try:
            # Through JSON and back: what is stored must be plain JSON, whatever the caller built.
            decoded: dict[str, object] = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError) as err:
            raise self._fail(key, f"plain JSON ({err})") from err
        return decoded

    def timings(self, key: str) -> dict[str, float] | None:
        value = self._raw.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self._fail(key, "an object of numbers or null")
        timings: dict[str, float] = {}
        for name, item in value.items():
            if (
                not isinstance(name, str)
                or isinstance(item, bool)
                or not isinstance(item, int | float)
            ):
                raise self._fail(key, "an object of numbers or null")
            timings[name] = float(item)
        return timings
