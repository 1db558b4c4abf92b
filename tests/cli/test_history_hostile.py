"""The history commands against text nobody vetted (imported files, a model's output, bytes
that are not UTF-8) and a data folder that cannot be written: one clean line, nothing lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from disk_faults import run_on_full_disk, unwritable
from fake_engine import ScriptedEngine, ScriptedModel
from terminal_support import Terminal
from termllm_cli import Result, termllm, termllm_process

from termllm import app
from termllm.config import load_config

Capsys = pytest.CaptureFixture[str]
# Clears the screen, retitles the terminal, rings, turns red; then Rich markup and a C1 CSI.
HOSTILE_TITLE = "\x1b[2J\x1b]0;pwned\x07\x1b[31mRED\x00 [red]markup[/red] \x9b31m"
# What a terminal would act on: none of it may reach one from text termllm did not write.
ACTED_ON = ("\x1b[2J", "\x1b]", "\x07", "\x00", "\x9b", "\x1b[31m")


def export(
    conversation_id: str = "c000000001",
    title: str = "t",
    content: str = "Name a colour",
    **conversation: Any,
) -> dict[str, Any]:
    return {
        "format": "termllm.conversation",
        "version": 1,
        "conversation": {
            "id": conversation_id,
            "title": title,
            "model": "org/m:Q4_K_M",
            "system_prompt": None,
            "params": {},
            "created_at": 1_700_000_000.0,
            "updated_at": 1_700_000_000.0,
            **conversation,
        },
        "messages": [
            {
                "id": f"q{conversation_id[1:]}",
                "parent_id": None,
                "role": "user",
                "content": content,
                "model": None,
                "created_at": 1_700_000_000.0,
                "prompt_tokens": None,
                "completion_tokens": None,
                "timings": None,
                "finish_reason": None,
            }
        ],
    }


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def history_of(*exports: dict[str, Any]) -> dict[str, Any]:
    return {"format": "termllm.history", "version": 1, "conversations": list(exports)}


def clean(result: Result) -> None:
    for output in (result.out, result.err):
        for code in ACTED_ON:
            assert code not in output, (code, output)


def one_line_error(result: Result, code: int = 2) -> None:
    assert result.code == code, result
    assert result.err.count("\n") == 1 and result.err.startswith("termllm: error: ")
    assert "unexpected" not in result.err and "Traceback" not in result.err


def listed(capsys: Capsys) -> list[dict[str, Any]]:
    result = termllm(capsys, "history", "ls", "--json")
    assert result.code == 0, result.err
    clean(result)
    found: list[dict[str, Any]] = json.loads(result.out)
    return found


def test_an_imported_title_reaches_no_terminal_raw(capsys: Capsys, tmp_path: Path) -> None:
    path = write(tmp_path / "evil.json", export(title=HOSTILE_TITLE, content=HOSTILE_TITLE))
    imported = termllm(capsys, "history", "import", str(path))
    assert imported.code == 0 and "imported c000000001" in imported.err
    assert "RED [red]markup[/red]" in imported.err
    for args in (("ls",), ("show", "c000"), ("export", "c000"), ("search", "markup")):
        result = termllm(capsys, "history", *args)
        assert result.code == 0, result.err
        clean(result)
        assert "[red]markup[/red]" in result.out
    # JSON keeps every character, escaped.
    [entry] = listed(capsys)
    assert entry["title"] == HOSTILE_TITLE
    for args in (("show", "c000", "--json"), ("export", "c000", "-f", "json")):
        result = termllm(capsys, "history", *args)
        clean(result)
        assert json.loads(result.out)["conversation"]["title"] == HOSTILE_TITLE


def test_on_a_terminal_foreign_text_is_neither_escapes_nor_markup(tmp_path: Path) -> None:
    path = write(tmp_path / "evil.json", export(title=HOSTILE_TITLE, content=HOSTILE_TITLE))
    assert termllm_run("history", "import", str(path)).returncode == 0
    for args in (("history", "ls"), ("history", "show", "c000")):
        with Terminal(*args) as terminal:
            assert terminal.wait(60) == 0
            seen = terminal.seen.decode("utf-8", "replace")
        for code in ACTED_ON:
            assert code not in seen, (args, code)
        assert "[red]markup[/red]" in seen


def termllm_run(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    """A subprocess given raw bytes as arguments, as a shell passes $'\\xff'."""
    return subprocess.run(
        [sys.executable, "-m", "termllm", *args],
        input=b"",
        capture_output=True,
        timeout=120,
        env=os.environ.copy(),
        check=False,
    )


def test_escape_codes_in_a_models_answer_stay_out_of_show(
    capsys: Capsys, monkeypatch: pytest.MonkeyPatch, starter_model: Path
) -> None:
    model = ScriptedModel(answer=["\x1b[2J\x1b]0;pwned\x07", "\x9b31mred\r\nand", "\tindented"])
    monkeypatch.setattr(app, "_llama_engine", lambda: ScriptedEngine(model))
    asked = termllm(capsys, "ask", "--json", "Say something")
    assert asked.code == 0, asked.err
    shown = termllm(capsys, "history", "show", json.loads(asked.out)["conversation_id"])
    assert shown.code == 0
    clean(shown)
    assert "red\nand" in shown.out and "\tindented" in shown.out


def short(value: object) -> str:
    """A test id: the value, or "text" for a whole file's text."""
    text = str(value)
    return text if len(text) <= 80 else "text"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 200_000 + "]" * 200_000, "nests too deeply"),
        (json.dumps(export(title="x")).replace('"x"', '"\\ud800"'), "title must be text"),
        (
            json.dumps(export()).replace("1700000000.0", "1" * 400, 1),
            "created_at must be a number of seconds",
        ),
        (
            json.dumps(export()).replace('"prompt_tokens": null', f'"prompt_tokens": {2**63}'),
            "prompt_tokens must be a whole number",
        ),
        (json.dumps(export(model="../../../../etc/passwd")), "not the path"),
    ],
    ids=short,
)
def test_a_hostile_import_is_one_clean_line_and_adds_nothing(
    capsys: Capsys, tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "hostile.json"
    path.write_text(text, encoding="ascii")
    result = termllm(capsys, "history", "import", str(path))
    one_line_error(result)
    assert reason in result.err
    assert listed(capsys) == []


def test_a_file_is_imported_all_or_nothing_and_never_twice(capsys: Capsys, tmp_path: Path) -> None:
    good = [export(f"c00000000{n}", f"conversation {n}") for n in (1, 2, 3)]
    broken = [*good[:2], {**good[2], "messages": [{**good[2]["messages"][0], "role": "tool"}]}]
    path = write(tmp_path / "three.json", history_of(*broken))
    one_line_error(termllm(capsys, "history", "import", str(path)))
    assert listed(capsys) == []

    write(path, history_of(*good))
    first = termllm(capsys, "history", "import", str(path))
    assert first.code == 0 and first.err.count("imported") == 3
    again = termllm(capsys, "history", "import", str(path))
    assert again.code == 0 and again.err == "skipped 3 already present\n"
    assert sorted(entry["title"] for entry in listed(capsys)) == [
        "conversation 1",
        "conversation 2",
        "conversation 3",
    ]


def test_timings_json_cannot_hold_never_make_an_export_that_is_not_json(
    capsys: Capsys, tmp_path: Path
) -> None:
    data = export()
    data["messages"].append(
        {
            **data["messages"][0],
            "id": "a000000001",
            "parent_id": "q000000001",
            "role": "assistant",
            "timings": {"ttft_ms": float("nan"), "decode_tokens_per_s": float("inf")},
            "finish_reason": "stop",
        }
    )
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(data))
    assert "NaN" in path.read_text()
    assert termllm(capsys, "history", "import", str(path)).code == 0
    exported = termllm(capsys, "history", "export", "c000000001", "-f", "json").out

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    assert json.loads(exported, parse_constant=refuse)["messages"][1]["timings"] == {}


def test_arguments_that_are_not_utf8_are_replaced(capsys: Capsys, tmp_path: Path) -> None:
    path = write(tmp_path / "one.json", export())
    assert termllm(capsys, "history", "import", str(path)).code == 0
    renamed = termllm_run("history", "rename", "c000", b"caf\xe9 \xff")
    assert renamed.returncode == 0, renamed.stderr
    assert [entry["title"] for entry in listed(capsys)] == ["caf\ufffd \ufffd"]
    for args in (("show", b"\xff"), ("search", b"caf\xe9"), ("rm", "-y", b"c0\xff")):
        result = termllm_run("history", *args)
        assert b"unexpected" not in result.stderr and b"Traceback" not in result.stderr
        assert result.stderr.count(b"\n") <= 1, result.stderr
    # A file whose name is not UTF-8 is still found.
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.json"))
    write(odd, export("c000000002", "from an odd file"))
    assert termllm_run("history", "import", bytes(odd)).returncode == 0
    assert len(listed(capsys)) == 2


def conversation_on_disk(tmp_path: Path) -> Path:
    """A history with one conversation, written by a process that has ended (an open
    connection here would keep SQLite's -shm file ready for the processes under test)."""
    path = write(tmp_path / "one.json", export(title="Café notes", content="Where is it?"))
    assert termllm_process("history", "import", str(path)).code == 0
    database: Path = load_config().paths.history_db
    return database


READING = (
    ("ls",),
    ("show", "c000"),
    ("search", "where"),
    ("export", "c000", "-f", "json"),
    ("export", "--all"),
)


def test_a_read_only_home_can_still_be_browsed(tmp_path: Path) -> None:
    database = conversation_on_disk(tmp_path)
    with unwritable(database.parent, database):
        for args in READING:
            result = termllm_process("history", *args)
            assert result.code == 0, (args, result.err)
            assert "Where is it?" in result.out or "Caf" in result.out
        refused = termllm_process("history", "rename", "c000", "new")
        one_line_error(refused, code=1)
        assert refused.err.startswith("termllm: error: cannot save to the history: cannot write")
    assert "Café notes" in termllm_process("history", "ls").out


def test_a_full_disk_can_still_be_browsed(tmp_path: Path) -> None:
    conversation_on_disk(tmp_path)
    for args in READING:
        result = run_on_full_disk(["-m", "termllm", "history", *args])
        assert result.returncode == 0, (args, result.stderr)
        assert "Where is it?" in result.stdout or "Caf" in result.stdout
    renamed = run_on_full_disk(["-m", "termllm", "history", "rename", "c000", "new"])
    assert renamed.returncode == 1
    assert renamed.stderr.startswith("termllm: error: cannot save to the history")
    assert renamed.stderr.count("\n") == 1
