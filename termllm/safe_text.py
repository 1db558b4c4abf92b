"""Text termllm did not write (titles, errors from model files and servers, search snippets,
imported or generated messages, command-line arguments) made safe to show: on a terminal, in
the app and in a Markdown export alike; as one line, or as a block that keeps its lines."""

from __future__ import annotations

import re
import unicodedata

# Skin-tone modifiers and joiners make one glyph of several emoji only in terminals that know
# the sequence, and variation selectors widen a symbol only in some: Rich counts what the
# terminal may draw wider, and a border after it moves. Without them each emoji is drawn alone,
# as wide everywhere as Rich counts it.
_EMOJI_MODIFIERS = range(0x1F3FB, 0x1F400)
_VARIATION_SELECTORS = range(0xFE00, 0xFE10)
# Control characters and line or paragraph breaks part words: they become spaces.
_BREAKS = frozenset({"Cc", "Zl", "Zp"})
# Lone surrogates other than the U+DC80..U+DCFF that surrogateescape decodes bytes to.
_NOT_A_BYTE = re.compile("[\ud800-\udc7f\udd00-\udfff]")


def one_line(text: str, max_chars: int | None = None) -> str:
    """`text` as one line drawn as wide as Rich measures it: control characters (escape codes)
    and line breaks become spaces; format characters (joiners, bidi marks), emoji modifiers and
    variation selectors go; runs of white space are one space; past `max_chars` it is cut with
    an ellipsis."""
    kept: list[str] = []
    for character in text:
        category = unicodedata.category(character)
        if category in _BREAKS:
            kept.append(" ")
        elif not (
            category.startswith("C")
            or ord(character) in _EMOJI_MODIFIERS
            or ord(character) in _VARIATION_SELECTORS
        ):
            kept.append(character)
    line = " ".join("".join(kept).split())
    if max_chars is not None and len(line) > max_chars:
        return line[: max_chars - 1] + "…"
    return line


# Embeddings, overrides and isolates reorder how a line is drawn ("Trojan source"); the other
# format characters (joiners that some scripts and emoji need) are harmless in a block.
_BIDI_CONTROLS = frozenset(chr(code) for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def text_block(text: str) -> str:
    """`text` (a message, a system prompt) with its lines, tabs and indentation kept, safe to
    show on a terminal: every other control character (escape codes, bells, NUL) becomes a
    space, a carriage return or a line or paragraph separator a line break (a lone `\\r` would
    let text overwrite its own line), bidi controls go, and a lone surrogate becomes U+FFFD."""
    kept: list[str] = []
    for character in text.replace("\r\n", "\n"):
        category = unicodedata.category(character)
        if character in "\n\t":
            kept.append(character)
        elif character == "\r" or category in {"Zl", "Zp"}:
            kept.append("\n")
        elif category == "Cc":
            kept.append(" ")
        elif category == "Cs":
            kept.append("\ufffd")
        elif character not in _BIDI_CONTROLS:
            kept.append(character)
    return "".join(kept)


def argument_text(text: str) -> str:
    """A command-line argument as text: bytes that were not UTF-8, which Python keeps as lone
    surrogates (and which SQLite and a UTF-8 terminal refuse), become U+FFFD."""
    # Surrogates that stand for no byte (not from argv, but possible from a caller) go first.
    text = _NOT_A_BYTE.sub("\ufffd", text)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
