"""`termllm search` against the fake Hub's model search API."""

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from fakehub import FakeHub
from termllm_cli import termllm

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        fake.add_repo("qwen/Qwen3-8B-GGUF", {"Qwen3-8B-Q4_K_M.gguf": b"a"})
        fake.set_stats("qwen/Qwen3-8B-GGUF", downloads=900, likes=40, parameter_count=8_190_000_000)
        fake.add_repo("unsloth/Qwen3-0.6B-GGUF", {"Qwen3-0.6B-Q8_0.gguf": b"b"}, gated=True)
        fake.set_stats(
            "unsloth/Qwen3-0.6B-GGUF",
            downloads=5000,
            likes=3,
            last_modified="2025-06-30T12:00:00.000Z",
        )
        fake.add_repo("qwen/Qwen3-8B", {"model.safetensors": b"c"})  # not GGUF
        fake.set_stats("qwen/Qwen3-8B", downloads=10**6)
        fake.add_repo("other/Llama-GGUF", {"l-Q4_K_M.gguf": b"d"})
        yield fake


def test_search_lists_gguf_repos_most_downloaded_first(capsys: Capsys, hub: FakeHub) -> None:
    result = termllm(capsys, "search", "QWEN3")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["REPO", "PARAMS", "DOWNLOADS", "LIKES", "UPDATED", "GATED"]
    assert lines[1].split() == ["unsloth/Qwen3-0.6B-GGUF", "?", "5,000", "3", "2025-06-30", "yes"]
    assert lines[2].split() == ["qwen/Qwen3-8B-GGUF", "8.2B", "900", "40", "2025-01-01", "no"]
    assert len(lines) == 3
    [request] = hub.log(method="GET")
    sent = parse_qs(request.query)
    assert sent["search"] == ["QWEN3"] and sent["filter"] == ["gguf"]
    assert sent["sort"] == ["downloads"] and sent["direction"] == ["-1"]
    assert {"downloads", "likes", "lastModified", "gated", "gguf"} <= set(sent["expand"])


def test_search_limit_and_json(capsys: Capsys, hub: FakeHub) -> None:
    result = termllm(capsys, "search", "qwen3", "--limit", "1", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == [
        {
            "repo_id": "unsloth/Qwen3-0.6B-GGUF",
            "parameter_count": None,
            "downloads": 5000,
            "likes": 3,
            "last_modified": "2025-06-30",
            "gated": True,
        }
    ]
    assert parse_qs(hub.log(method="GET")[0].query)["limit"] == ["1"]
    nothing = termllm(capsys, "search", "mistral")
    assert nothing.code == 0 and nothing.out == "" and "no GGUF models" in nothing.err


def test_search_bad_input_and_hostile_answers(capsys: Capsys, hub: FakeHub) -> None:
    for args in (["search", " "], ["search", "x", "--limit", "0"], ["search", "x", "-n", "101"]):
        result = termllm(capsys, *args)
        assert result.code == 2 and result.err.startswith("termllm: error:"), result
        assert len(result.err.splitlines()) == 1

    hub.edit_search = lambda entries: [
        {"id": "evil/\x1b[2Jname\nfake-line", "downloads": "many", "likes": -1, "gguf": [1]},
        {"id": "x/y", "lastModified": "yesterday", "gated": "auto"},
    ]
    result = termllm(capsys, "search", "q", "--json")
    assert result.code == 0, result.err
    first, second = json.loads(result.out)
    assert "\x1b" not in first["repo_id"] and "\n" not in first["repo_id"]
    assert first["downloads"] == 0 and first["likes"] == 0 and first["parameter_count"] is None
    assert second["last_modified"] is None and second["gated"] is True

    for answer in (b"not json", {"error": "x"}, [{"downloads": 3}], ["x"]):
        hub.edit_search = lambda entries, answer=answer: answer
        result = termllm(capsys, "search", "q")
        assert result.code == 1 and "did not answer like a Hugging Face Hub" in result.err
        assert len(result.err.splitlines()) == 1
    hub.edit_search = lambda entries: b"[" + b" " * (5 << 20) + b"]"
    result = termllm(capsys, "search", "q")
    assert result.code == 1 and "search results is over 4 MiB" in result.err


def test_search_offline_unreachable_and_failing_hub(
    capsys: Capsys, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = termllm(capsys, "search", "qwen3")
    assert result.code == 4 and "offline mode (HF_HUB_OFFLINE) is on" in result.err
    assert hub.log() == []
    monkeypatch.delenv("HF_HUB_OFFLINE")
    hub.fail_with = 503
    result = termllm(capsys, "search", "qwen3")
    assert result.code == 1 and "HTTP 503" in result.err and "try again later" in result.err
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    started = time.monotonic()
    result = termllm(capsys, "search", "qwen3")
    assert result.code == 4 and "cannot reach the Hub" in result.err
    assert time.monotonic() - started < 5
    assert "Traceback" not in result.err and len(result.err.splitlines()) == 1
