"""Conversation history through the CLI: `ask` saves and continues, `history` browses."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fake_engine import ScriptedEngine, ScriptedModel
from termllm_cli import termllm

from termllm import app
from termllm.config import load_config
from termllm.domain import Completion, FinishReason, Timings, Usage
from termllm.store import HistoryStore

Capsys = pytest.CaptureFixture[str]
GREEDY = ("--temperature", "0", "--seed", "7")


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, starter_model: Path) -> ScriptedModel:
    model = ScriptedModel(answer=["Paris ", "is ", "the ", "capital."])
    monkeypatch.setattr(app, "_llama_engine", lambda: ScriptedEngine(model))
    return model


def ask_json(capsys: Capsys, *args: str) -> dict[str, object]:
    result = termllm(capsys, "ask", "--json", *args)
    assert result.code == 0, result.err
    answer: dict[str, object] = json.loads(result.out)
    return answer


def conversations(capsys: Capsys) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = json.loads(termllm(capsys, "history", "ls", "--json").out)
    return listed


def test_ask_saves_a_conversation_and_continue_sends_its_history(
    capsys: Capsys, scripted: ScriptedModel
) -> None:
    first = ask_json(capsys, "-s", "Be brief.", "What is the capital of France?\nThanks")
    [saved] = conversations(capsys)
    assert saved["id"] == first["conversation_id"]
    assert saved["title"] == "What is the capital of France?"
    assert saved["message_count"] == 2
    assert saved["system_prompt"] == "Be brief."
    second = ask_json(capsys, "-c", "And of Italy?")
    assert second["conversation_id"] == first["conversation_id"]
    sent = [(m.role.value, m.content) for m in scripted.seen[-1]]
    assert sent == [
        ("system", "Be brief."),
        ("user", "What is the capital of France?\nThanks"),
        ("assistant", "Paris is the capital."),
        ("user", "And of Italy?"),
    ]
    third = ask_json(capsys, "--cid", str(first["conversation_id"])[:6], "And Spain?")
    assert third["conversation_id"] == first["conversation_id"]
    assert conversations(capsys)[0]["message_count"] == 6
    shown = termllm(capsys, "history", "show", str(first["conversation_id"])[:5]).out
    assert shown.startswith("# What is the capital of France?\n")
    assert shown.count("## User") == 3 and shown.count("## Assistant") == 3
    assert "\x1b[" not in shown


def test_continue_follows_the_alternative_chosen_in_the_history(
    capsys: Capsys, scripted: ScriptedModel
) -> None:
    first = ask_json(capsys, "Capital of France?")
    cid, first_answer = str(first["conversation_id"]), str(first["message_id"])
    # Another answer to the same question, as the TUI's regenerate saves it.
    history = app.build_services(load_config()).history
    pending = history.regenerate(cid)
    other = Completion("Lyon.", FinishReason.STOP, Usage(5, 1), Timings(1.0, 1.0, 1.0, 1.0))
    history.save_answer(pending.exchange, other, "m")

    ask_json(capsys, "-c", "Sure?")
    assert [m.content for m in scripted.seen[-1]][-2:] == ["Lyon.", "Sure?"]

    history.select_alternative(cid, first_answer)
    ask_json(capsys, "-c", "Really?")
    sent = [m.content for m in scripted.seen[-1]]
    assert sent == ["Capital of France?", "Paris is the capital.", "Really?"]
    history.close()


def test_no_save_leaves_no_trace(capsys: Capsys, scripted: ScriptedModel) -> None:
    answer = ask_json(capsys, "--no-save", "hello")
    assert answer["conversation_id"] is None and answer["message_id"] is None
    assert conversations(capsys) == []


def test_continue_with_nothing_to_continue_is_an_error(
    capsys: Capsys, scripted: ScriptedModel
) -> None:
    result = termllm(capsys, "ask", "-c", "hello")
    assert result.code == 3 and "no conversation to continue" in result.err
    result = termllm(capsys, "ask", "--cid", "zzzz", "hello")
    assert result.code == 3 and "zzzz" in result.err


def test_failed_and_cut_answers_are_saved_with_their_finish_reason(
    capsys: Capsys, scripted: ScriptedModel
) -> None:
    scripted.fail_after = 2
    result = termllm(capsys, "ask", "tell me")
    assert result.code == 1 and "generation failed" in result.err
    assert result.out == "Paris is \n"
    [saved] = conversations(capsys)
    record = json.loads(termllm(capsys, "history", "show", str(saved["id"]), "--json").out)
    answer = record["messages"][-1]
    assert (answer["content"], answer["finish_reason"]) == ("Paris is ", "error")


def test_a_failed_answer_shows_its_error_and_keeps_it_through_export(
    capsys: Capsys, tmp_path: Path
) -> None:
    # Saved as the turn pipeline saves a failure: the question, then an empty answer.
    reason = "cannot load <x>.gguf: unknown model architecture\n\x1b[31mqwen9"
    with HistoryStore.open(load_config().paths.history_db) as store:
        conversation = store.create_conversation("Broken model", "org/x:Q4_0", None, {})
        question = store.add_message(conversation.id, None, "user", "hello")
        store.add_message(
            conversation.id, question.id, "assistant", "", finish_reason="error", error=reason
        )
    cid = conversation.id

    shown = termllm(capsys, "history", "show", cid)
    assert shown.code == 0, shown.err
    assert shown.out.endswith(
        "## User\n\nhello\n\n## Assistant (error)\n\n"
        "(failed: `cannot load <x>.gguf: unknown model architecture [31mqwen9`)\n"
    )
    record = json.loads(termllm(capsys, "history", "show", cid, "--json").out)
    assert [m["error"] for m in record["messages"]] == [None, reason]

    exported = tmp_path / "broken.json"
    assert termllm(capsys, "history", "export", cid, "-f", "json", "-o", str(exported)).code == 0
    assert termllm(capsys, "history", "rm", "-y", cid).code == 0
    assert termllm(capsys, "history", "import", str(exported)).code == 0
    [restored] = conversations(capsys)
    again = termllm(capsys, "history", "show", str(restored["id"])).out
    assert again.replace(str(restored["id"]), cid) == shown.out


def test_search_rename_export_import_and_rm(
    capsys: Capsys, scripted: ScriptedModel, tmp_path: Path
) -> None:
    first = ask_json(capsys, "Où est le café crème?")
    ask_json(capsys, "Как дела?")
    hits = json.loads(termllm(capsys, "history", "search", "café", "--json").out)
    assert {hit["conversation_id"] for hit in hits} == {first["conversation_id"]}
    assert json.loads(termllm(capsys, "history", "search", "дела", "--json").out)
    cid = str(first["conversation_id"])
    assert termllm(capsys, "history", "rename", cid, "Coffee talk").code == 0
    assert conversations(capsys)[-1]["title"] == "Coffee talk"

    exported = tmp_path / "all.json"
    assert (
        termllm(capsys, "history", "export", "--all", "-f", "json", "-o", str(exported)).code == 0
    )
    markdown = termllm(capsys, "history", "export", cid).out
    assert markdown.startswith("# Coffee talk") and "café crème" in markdown
    assert termllm(capsys, "history", "rm", "-y", cid).code == 0
    assert len(conversations(capsys)) == 1
    imported = termllm(capsys, "history", "import", str(exported))
    assert imported.code == 0
    # The deleted one comes back with its id; the one still there is not added twice.
    assert imported.err == f"imported {cid}  Coffee talk\nskipped 1 already present\n"
    titles = sorted(str(c["title"]) for c in conversations(capsys))
    assert titles == ["Coffee talk", "Как дела?"]


def test_history_errors_are_one_line(
    capsys: Capsys, scripted: ScriptedModel, tmp_path: Path
) -> None:
    ask_json(capsys, "hello")
    assert termllm(capsys, "history", "show", "nope").code == 3
    assert termllm(capsys, "history", "rm", conversations(capsys)[0]["id"]).code == 2  # no -y
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = termllm(capsys, "history", "import", str(bad))
    assert result.code == 2 and result.err.count("\n") == 1
    bad.write_text('{"format": "something else"}')
    result = termllm(capsys, "history", "import", str(bad))
    assert result.code != 0 and result.err.count("\n") == 1


def _ask_process(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "termllm", "ask", *GREEDY, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )


def _rows(query: str) -> list[tuple[object, ...]]:
    database = load_config().paths.history_db
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return connection.execute(query).fetchall()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_answer_keeps_the_question(
    starter_model: Path, stop: signal.Signals
) -> None:
    process = _ask_process("--max-tokens", "3000", "Write a very long story about a dragon.")
    assert process.stdout is not None
    assert process.stdout.read(10)
    process.send_signal(stop)
    process.communicate(timeout=30)
    rows = _rows("SELECT role, content, finish_reason FROM messages ORDER BY created_at")
    assert rows[0] == ("user", "Write a very long story about a dragon.", None)
    if stop == signal.SIGINT:
        assert process.returncode == 130
        assert len(rows) == 2
        role, content, finish = rows[1]
        assert role == "assistant" and finish == "cancelled" and str(content)
    else:
        assert len(rows) == 1


def test_concurrent_asks_all_land_in_one_database(starter_model: Path) -> None:
    processes = [_ask_process("--max-tokens", "8", f"Say the number {n}.") for n in range(4)]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    titles = sorted(str(row[0]) for row in _rows("SELECT title FROM conversations"))
    assert titles == [f"Say the number {n}." for n in range(4)]
    assert len(_rows("SELECT id FROM messages")) == 8


def test_continuing_with_the_real_model_sends_the_history(starter_model: Path) -> None:
    def ask_json_process(*args: str) -> dict[str, Any]:
        process = _ask_process("--max-tokens", "8", "--json", *args)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        answer: dict[str, Any] = json.loads(out)
        return answer

    before = ask_json_process("My name is Ada.")
    after = ask_json_process("-c", "What is my name?")
    assert after["conversation_id"] == before["conversation_id"]
    assert after["usage"]["prompt_tokens"] > before["usage"]["prompt_tokens"] + 5


def test_export_format_md_writes_the_markdown_document(
    capsys: Capsys, scripted: ScriptedModel, tmp_path: Path
) -> None:
    answer = ask_json(capsys, "-s", "Be brief.", "Capital of France?")
    cid = str(answer["conversation_id"])
    out = tmp_path / "france.md"
    result = termllm(capsys, "history", "export", cid[:6], "--format", "md", "-o", str(out))
    assert result.code == 0 and str(out) in result.err
    text = out.read_text(encoding="utf-8")
    assert text.startswith(f"# Capital of France?\n\n- id: {cid}\n")
    assert "## System\n\nBe brief.\n\n## User\n\nCapital of France?\n\n## Assistant\n\n" in text
    assert text.endswith("Paris is the capital.\n")
    assert termllm(capsys, "history", "export", cid).out == text
    exported = json.loads(termllm(capsys, "history", "export", cid, "-f", "json").out)
    assert exported["conversation"]["id"] == cid
