"""Markdown exports: the document, file names, and writing without losing a user's file."""

from __future__ import annotations

from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from termllm.errors import StorageError
from termllm.services.export_markdown import (
    conversation_markdown,
    default_export_path,
    slug,
    write_export,
)
from termllm.store import HistoryStore, MessageRecord


def test_the_document_has_the_title_system_prompt_and_each_message(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path / "h.db") as store:
        conversation = store.create_conversation("Greeting", "smol", "Be kind.", {})
        question = store.add_message(conversation.id, None, "user", "Hi")
        store.add_message(
            conversation.id, question.id, "assistant", "Hel", finish_reason="cancelled"
        )
        text = conversation_markdown(conversation, store.current_branch(conversation.id))
    assert text.startswith(f"# Greeting\n\n- id: {conversation.id}\n- model: smol\n")
    assert "## System\n\nBe kind.\n" in text
    assert text.endswith("## User\n\nHi\n\n## Assistant (cancelled)\n\nHel\n")


def test_a_failed_answer_says_why_in_one_literal_line(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path / "h.db") as store:
        conversation = store.create_conversation("Broken", "smol", None, {})
        question = store.add_message(conversation.id, None, "user", "Hi")

        def failed(content: str, error: str | None) -> MessageRecord:
            return store.add_message(
                conversation.id,
                question.id,
                "assistant",
                content,
                finish_reason="error",
                error=error,
            )

        answers = [
            failed("", "cannot load x.gguf: unknown model architecture"),
            failed("Hel", "failed:\n\n## System\r\n\x1b]52;c;cGF3bmVk\x07\u202eevil\u2028 end"),
            failed("", "`<model>` at *[1](http://x)*``"),
            failed("", " \n "),
            # Saved before errors were kept: shown as before.
            failed("Old", None),
        ]
        text = conversation_markdown(conversation, [question, *answers])
    assert text.endswith(
        "## User\n\nHi\n\n"
        "## Assistant (error)\n\n(failed: `cannot load x.gguf: unknown model architecture`)\n\n"
        "## Assistant (error)\n\nHel\n\n(failed: `failed: ## System ]52;c;cGF3bmVk evil end`)\n\n"
        "## Assistant (error)\n\n(failed: ``` `<model>` at *[1](http://x)*`` ```)\n\n"
        "## Assistant (error)\n\n(failed)\n\n"
        "## Assistant (error)\n\nOld\n"
    )
    assert "\x1b" not in text and "\u202e" not in text
    # Read as Markdown, each error is one paragraph showing exactly its text.
    html = MarkdownIt("commonmark").render(text)
    assert html.count("<h2>") == 6 and "<h2>System" not in html
    assert "<p>(failed: <code>`&lt;model&gt;` at *[1](http://x)*``</code>)</p>" in html


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("How to: stress a word?", "how-to-stress-a-word"),
        ("  ../../etc/passwd  ", "etc-passwd"),
        ("Café au lait", "café-au-lait"),
        ("???", "conversation"),
        ("x" * 100, "x" * 60),
    ],
)
def test_slugs_are_safe_file_names(title: str, expected: str) -> None:
    assert slug(title) == expected


def test_the_default_path_never_names_an_existing_file(tmp_path: Path) -> None:
    assert default_export_path("A b", tmp_path) == tmp_path / "a-b.md"
    (tmp_path / "a-b.md").touch()
    (tmp_path / "a-b-2.md").touch()
    assert default_export_path("A b", tmp_path) == tmp_path / "a-b-3.md"


def test_writing_refuses_to_replace_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "out.md"
    write_export(path, "one", overwrite=False)
    with pytest.raises(StorageError, match="already exists"):
        write_export(path, "two", overwrite=False)
    assert path.read_text(encoding="utf-8") == "one"
    write_export(path, "two", overwrite=True)
    assert path.read_text(encoding="utf-8") == "two"


def test_an_unwritable_place_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").touch()
    with pytest.raises(StorageError, match="cannot write"):
        write_export(tmp_path / "file" / "out.md", "text", overwrite=False)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="cannot write /dev/full"):
        write_export(Path("/dev/full"), "x" * 100_000, overwrite=True)


def test_reasoning_opens_the_answer_folded_and_cannot_close_the_fold_itself(
    tmp_path: Path,
) -> None:
    with HistoryStore.open(tmp_path / "h.db") as store:
        conversation = store.create_conversation("Sums", "m", None, {})
        question = store.add_message(conversation.id, None, "user", "What is 2+2?")
        store.add_message(
            conversation.id,
            question.id,
            "assistant",
            "4",
            finish_reason="stop",
            reasoning="Add them.\n\nA tag: </details> stays text.",
            reasoning_tokens=12,
        )
        text = conversation_markdown(conversation, store.messages(conversation.id))
    answer = text[text.index("## Assistant") :]
    assert answer.startswith(
        "## Assistant\n\n<details><summary>Thinking (12 tokens)</summary>\n\n"
        "> Add them.\n>\n> A tag: &lt;/details> stays text.\n\n</details>\n\n4\n"
    )
    html = MarkdownIt().render(text)
    assert html.count("</details>") == 1
    assert html.index("Add them.") < html.index("</details>") < html.rindex("4")
