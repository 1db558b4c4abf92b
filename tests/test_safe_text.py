"""Foreign text as a block that keeps its lines, and arguments that were not UTF-8."""

from __future__ import annotations

from termllm.safe_text import argument_text, text_block


def test_a_block_keeps_lines_tabs_and_indentation_and_nothing_a_terminal_acts_on() -> None:
    code = "def f():\n\treturn 1\n    # four spaces\n"
    assert text_block(code) == code
    assert text_block("a\r\nb\rc\u2028d\u2029e") == "a\nb\nc\nd\ne"
    assert text_block("\x1b[2J\x1b]0;pwned\x07red\x00\x7f\x9b31m") == " [2J ]0;pwned red   31m"
    # Bidi overrides reorder what is drawn; joiners and other scripts stay.
    assert text_block("abc\u202edef\u2066g\u2069") == "abcdefg"
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # a joiner inside a word
    assert text_block(f"👨\u200d👩 {persian}") == f"👨\u200d👩 {persian}"
    assert text_block("lone \ud800") == "lone \ufffd"


def test_an_argument_that_was_not_utf8_is_replaced_not_fatal() -> None:
    # What Python makes of the bytes b"caf\xe9 \xff" in argv.
    assert argument_text("caf\udce9 \udcff") == "caf\ufffd \ufffd"
    assert argument_text("café 😀") == "café 😀"
    assert argument_text("\ud800x") == "\ufffdx"
    assert argument_text("caf\udce9").encode("utf-8") == b"caf\xef\xbf\xbd"
