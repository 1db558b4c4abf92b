"""Conversations as Markdown for reading and sharing, and the files such an export goes to.

Shared by `termllm history export` and the chat app's export, so both write the same document."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from termllm.errors import StorageError
from termllm.safe_text import one_line, text_block

if TYPE_CHECKING:
    from collections.abc import Sequence

    from termllm.store import ConversationRecord, MessageRecord

SLUG_LENGTH = 60
_NOT_WORD = re.compile(r"[^\w]+")
_BACKTICKS = re.compile(r"`+")


def conversation_markdown(conversation: ConversationRecord, branch: Sequence[MessageRecord]) -> str:
    """A heading with the title, the id, model and start, then one section per message; a
    thinking model's reasoning opens its answer's section, folded; a failed answer's section
    ends with why it failed.

    Every text in it came from a model or a file (an import): it is made safe to show, since
    the document is printed by `history show` and read in terminals; the JSON export is the
    one that keeps every character.
    """
    lines = [
        f"# {one_line(conversation.title)}",
        "",
        f"- id: {conversation.id}",
        f"- model: {one_line(conversation.model or '?')}",
        f"- started: {when(conversation.created_at)}",
        "",
    ]
    if conversation.system_prompt:
        lines += ["## System", "", text_block(conversation.system_prompt), ""]
    for message in branch:
        heading = message.role.capitalize()
        if message.finish_reason and message.finish_reason != "stop":
            heading += f" ({message.finish_reason})"
        lines += [f"## {heading}", ""]
        if message.reasoning:
            lines += reasoning_block(message.reasoning, message.reasoning_tokens)
        if message.content or message.error is None:
            lines += [text_block(message.content), ""]
        if message.error is not None:
            reason = one_line(message.error)
            lines += [f"(failed: {code_span(reason)})" if reason else "(failed)", ""]
    return "\n".join(lines)


def reasoning_block(reasoning: str, tokens: int | None) -> list[str]:
    """The reasoning folded away where Markdown is rendered as HTML (a `<details>` block), and
    set apart as a quote where it is not (a terminal's `history show`)."""
    size = f" ({tokens} tokens)" if tokens else ""
    # Escaped, an HTML tag in it (`</details>` above all) is shown rather than obeyed.
    text = text_block(reasoning).replace("&", "&amp;").replace("<", "&lt;")
    quoted = [f"> {line}".rstrip() for line in text.splitlines()]
    return [f"<details><summary>Thinking{size}</summary>", "", *quoted, "", "</details>", ""]


def code_span(text: str) -> str:
    """`text` shown exactly as written: an error is plain text, and read as Markdown a
    `<path>` would vanish as HTML and `*` or `[…](…)` become emphasis or links."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    # A space keeps a backtick at either end from joining the fence; one is removed each side.
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def slug(title: str) -> str:
    """A file-name-safe form of a title: lower case words joined by '-'."""
    words = _NOT_WORD.sub("-", title.lower()).strip("-_")
    return words[:SLUG_LENGTH].rstrip("-_") or "conversation"


def default_export_path(title: str, directory: Path) -> Path:
    """`<directory>/<slug>.md`, or the first `<slug>-N.md` that does not exist yet."""
    stem = slug(title)
    candidate = directory / f"{stem}.md"
    number = 2
    while candidate.exists():
        candidate = directory / f"{stem}-{number}.md"
        number += 1
    return candidate


def write_export(path: Path, text: str, *, overwrite: bool) -> None:
    """Write `text` to `path`; without `overwrite` an existing file is an error, never replaced
    (checked by the open itself, so a file created meanwhile is not lost either)."""
    try:
        file = path.open("w" if overwrite else "x", encoding="utf-8")
    except FileExistsError as err:
        raise StorageError(f"{path} already exists") from err
    except OSError as err:
        raise StorageError(f"cannot write {path}: {err.strerror or err}") from err
    try:
        with file:
            file.write(text)
    except OSError as err:
        if not overwrite:
            # A half-written new file (a full disk) would pass for a complete export.
            path.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {err.strerror or err}") from err
