"""Text termllm did not write (titles, errors from model files and servers, search snippets) as
one line that is safe to show: on a terminal, in the app and in a Markdown export alike."""

from __future__ import annotations

import unicodedata

# Skin-tone modifiers and joiners make one glyph of several emoji only in terminals that know
# the sequence, and variation selectors widen a symbol only in some: Rich counts what the
# terminal may draw wider, and a border after it moves. Without them each emoji is drawn alone,
# as wide everywhere as Rich counts it.
_EMOJI_MODIFIERS = range(0x1F3FB, 0x1F400)
_VARIATION_SELECTORS = range(0xFE00, 0xFE10)
# Control characters and line or paragraph breaks part words: they become spaces.
_BREAKS = frozenset({"Cc", "Zl", "Zp"})


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
