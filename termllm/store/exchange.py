"""The JSON export of one conversation, and the checks an export must pass to be imported.

An export holds every field of the conversation and of each message, parent links included, in
creation order. An import keeps the ids where it can (see repository.import_conversations) and
the timestamps. An export is text from anywhere: every field is checked and bounded here, so
what passes can be stored, shown and exported again as plain JSON.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Final

from termllm.domain import ModelRef, PathRef
from termllm.errors import ModelRefError, UsageError
from termllm.model_files import is_gguf_name, model_stem
from termllm.refs import parse_model_ref
from termllm.safe_text import one_line
from termllm.store.records import (
    FINISH_REASONS,
    ROLES,
    ConversationRecord,
    MessageRecord,
    bounded_error,
    finite_timings,
)

EXPORT_FORMAT: Final = "termllm.conversation"
EXPORT_VERSION: Final = 1
# The last second of the year 9999: later (or negative) times cannot be shown as a date.
LATEST_TIME: Final = 253_402_300_799
# The largest whole number every JSON reader reads exactly (and SQLite stores).
MOST_TOKENS: Final = 2**53 - 1
# Settings are a flat object with a few lists: deeper nesting is not an export of ours, and
# would only make later readers recurse.
PARAMS_DEPTH: Final = 8
# Model references are short; one longer than this is not one.
REF_LENGTH: Final = 500
# How much of a value an error quotes.
QUOTED_CHARS: Final = 60


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
        self.reason = reason


def quoted(value: object) -> str:
    """A value from the file as an error quotes it: one safe line, bounded."""
    if isinstance(value, str):
        return repr(one_line(value, QUOTED_CHARS))
    return one_line(repr(value), QUOTED_CHARS)


def parse_exports(
    exports: Sequence[object],
) -> list[tuple[ConversationRecord, list[MessageRecord]]]:
    """Every export of a file, each checked as `parse_export` does; an error names the
    conversation at fault when there are several."""
    parsed = []
    for n, data in enumerate(exports):
        try:
            parsed.append(parse_export(data))
        except ExportFormatError as err:
            if len(exports) == 1:
                raise
            raise ExportFormatError(f"conversations[{n}]: {err.reason}") from err
    return parsed


def parse_export(data: object) -> tuple[ConversationRecord, list[MessageRecord]]:
    """The conversation and messages of an export, with their exported ids, fully checked.

    `message_count` and each message's `conversation_id` are redundant and ignored; a message's
    parent must come before it, which also rules out cycles. `leaf_id` (the chosen branch) may
    be missing, as in exports from before branches could be chosen, and so may a message's
    `error` (why an answer failed) and `reasoning`, as in exports from before they were kept.
    """
    if not isinstance(data, Mapping):
        raise ExportFormatError("expected a JSON object")
    if data.get("format") != EXPORT_FORMAT:
        raise ExportFormatError(f"'format' must be {EXPORT_FORMAT!r}")
    version = data.get("version")
    if version != EXPORT_VERSION or isinstance(version, bool):
        raise ExportFormatError(
            f"export version {quoted(version)} is not {EXPORT_VERSION} "
            "(a newer termllm may read it)"
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
        raise ExportFormatError(
            f"conversation.leaf_id {quoted(leaf_id)} is not one of its messages"
        )
    conversation = ConversationRecord(
        id=conversation_id,
        title=fields.text("title"),
        model=fields.model_ref("model"),
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
        raise ExportFormatError(f"{fields.where}.id {quoted(message_id)} is used twice")
    parent_id = fields.optional_text("parent_id")
    if parent_id is not None and parent_id not in seen:
        raise ExportFormatError(
            f"{fields.where}.parent_id {quoted(parent_id)} is not a message before it"
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
    reasoning = fields.optional_text("reasoning")
    reasoning_tokens = fields.count("reasoning_tokens")
    if (reasoning is not None or reasoning_tokens is not None) and role != "assistant":
        raise ExportFormatError(f"{fields.where}.reasoning is only for assistant messages")
    return MessageRecord(
        id=message_id,
        conversation_id=conversation_id,
        parent_id=parent_id,
        role=role,
        content=fields.text("content"),
        model=fields.model_ref("model"),
        created_at=fields.timestamp("created_at"),
        prompt_tokens=fields.count("prompt_tokens"),
        completion_tokens=fields.count("completion_tokens"),
        timings=fields.timings("timings"),
        finish_reason=finish_reason,
        # An export is text from anywhere: held to the bound of a failure saved here.
        error=None if error is None else bounded_error(error),
        reasoning=reasoning or None,
        reasoning_tokens=reasoning_tokens,
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
        return self._storable(key, value)

    def optional_text(self, key: str) -> str | None:
        value = self._raw.get(key)
        if value is not None and not isinstance(value, str):
            raise self._fail(key, "a string or null")
        return None if value is None else self._storable(key, value)

    def _storable(self, key: str, value: str) -> str:
        # JSON can spell a lone surrogate ("\ud800"), which is no character: SQLite's UTF-8,
        # and a terminal, refuse it.
        if not _is_text(value):
            raise self._fail(key, "text (it holds a lone surrogate, \\ud800 to \\udfff)")
        return value

    def model_ref(self, key: str) -> str | None:
        """A model reference as `ask` and the app would read it, kept only if it names a model
        by Hub reference or by name: a path from the file would make termllm open whatever
        file it names. A path to a .gguf file becomes that model's name."""
        value = self.optional_text(key)
        if value is None:
            return None
        if len(value) > REF_LENGTH or any(unicodedata.category(c)[0] == "C" for c in value):
            raise self._fail(key, "a model reference (owner/repo[:QUANT] or a model name)")
        if value.startswith("~"):
            # A path in a home folder: reading it as a reference would look that user up.
            ref: ModelRef = PathRef(Path(value))
        else:
            try:
                ref = parse_model_ref(value)
            except ModelRefError as err:
                raise self._fail(key, f"a model reference ({err})") from err
        if isinstance(ref, PathRef):
            name = Path(value).name
            if not is_gguf_name(name) or not model_stem(name):
                raise self._fail(key, f"a model reference, not the path {quoted(value)} of a file")
            return model_stem(name)
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
        # Compared before any float(): a 400-digit whole number is too large for one.
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 <= value <= LATEST_TIME
        ):
            raise self._fail(key, "a number of seconds since 1970, before the year 10000")
        return float(value)

    def count(self, key: str) -> int | None:
        value = self._raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MOST_TOKENS:
            raise self._fail(key, f"a whole number of tokens up to {MOST_TOKENS}, or null")
        return value

    def json_object(self, key: str) -> dict[str, object]:
        value = self._raw.get(key)
        if not isinstance(value, Mapping):
            raise self._fail(key, "an object")
        if _depth(value) > PARAMS_DEPTH:
            raise self._fail(key, f"an object nested at most {PARAMS_DEPTH} deep")
        try:
            # Through JSON and back: what is stored must be plain JSON, whatever the caller built.
            encoded = json.dumps(value, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError) as err:
            raise self._fail(key, f"plain JSON ({one_line(str(err), QUOTED_CHARS)})") from err
        if not _is_text(encoded):
            raise self._fail(key, "text (it holds a lone surrogate, \\ud800 to \\udfff)")
        decoded: dict[str, object] = json.loads(encoded)
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
                or not _is_text(name)
                or isinstance(item, bool)
                or not isinstance(item, int | float)
                # A whole number too large for a float is no timing.
                or (isinstance(item, int) and abs(item) > MOST_TOKENS)
            ):
                raise self._fail(key, "an object of numbers or null")
            timings[name] = float(item)
        # Python's JSON reads NaN and Infinity, which JSON has not: a timing that was not
        # measured is left out, as a new answer's would be, so an export is JSON again.
        return finite_timings(timings)


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _depth(value: object) -> int:
    """How deep lists and objects nest in `value`, without recursing (a hostile file nests
    deeper than Python's stack)."""
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, Mapping | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, Mapping) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest
