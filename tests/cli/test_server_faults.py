"""`ask`, `ls` and `doctor` against a fake OpenAI-compatible server that fails on cue: refused
keys, busy or broken servers, silence, cut and malformed streams."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fake_openai import (
    MODEL,
    FakeOpenAI,
    Listing,
    Raw,
    Silent,
    Status,
    Stream,
    closed_port_url,
    content,
    write_servers,
)
from fake_openai_cli import Capsys, ask, fake, last_answer, one_error_line
from termllm_cli import termllm

from termllm.errors import ExitCode

__all__ = ["fake"]  # the fixture, used by name

KEY_ENV = "BOX_API_KEY"
SECRET = "sk-fake-0123456789abcdef"


# Refused keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_names_its_variable_and_never_shows_the_key(
    capsys: Capsys,
    fake: FakeOpenAI,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
) -> None:
    write_servers(isolated_env, {"box": {"url": fake.url, "api_key_env": KEY_ENV}})
    monkeypatch.setenv(KEY_ENV, SECRET)
    # As OpenAI's own 401 does, the server quotes the key it was given.
    fake.models = Status(status, f"Incorrect API key provided: {SECRET}")
    result = ask(capsys, "Hi")
    assert result.code == ExitCode.NETWORK
    line = one_error_line(result)
    assert f"server 'box' refused the request (HTTP {status}): check the key in ${KEY_ENV}" in line
    assert fake.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    shown = [result]
    shown += [termllm(capsys, "history", "export", "--all", "-f", form) for form in ("md", "json")]
    shown.append(termllm(capsys, "doctor"))
    shown.append(termllm(capsys, "ls", "--json"))
    assert "refused the request" in shown[1].out, "the failed answer says why"
    for output in shown:
        assert SECRET not in output.out + output.err


def test_a_refusal_with_the_key_variable_unset_says_it_is_not_set(
    capsys: Capsys, fake: FakeOpenAI, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_servers(isolated_env, {"box": {"url": fake.url, "api_key_env": KEY_ENV}})
    monkeypatch.delenv(KEY_ENV, raising=False)
    fake.models = Status(401, "missing key")
    result = ask(capsys, "Hi")
    assert result.code == ExitCode.NETWORK
    assert f"${KEY_ENV} is not set" in one_error_line(result)
    assert "authorization" not in fake.requests[0].headers


def test_a_refusal_without_a_key_variable_says_which_setting_to_set(
    capsys: Capsys, fake: FakeOpenAI
) -> None:
    fake.models = Status(401, "missing key")
    result = ask(capsys, "Hi")
    assert "set servers.box.api_key_env" in one_error_line(result)


def test_the_key_is_sent_with_every_request(
    capsys: Capsys, fake: FakeOpenAI, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_servers(isolated_env, {"box": {"url": fake.url, "api_key_env": KEY_ENV}})
    monkeypatch.setenv(KEY_ENV, SECRET)
    assert ask(capsys, "Hi").code == 0
    assert [r.path for r in fake.requests] == ["/v1/models", "/v1/chat/completions"]
    assert {r.headers["authorization"] for r in fake.requests} == {f"Bearer {SECRET}"}


# Error statuses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, "server 'box' is busy (HTTP 429): Rate limit reached"),
        (500, "server 'box' failed (HTTP 500): Rate limit reached"),
        (503, "server 'box' failed (HTTP 503): Rate limit reached"),
    ],
)
def test_a_busy_or_failing_server_shows_its_message(
    capsys: Capsys, fake: FakeOpenAI, status: int, expected: str
) -> None:
    fake.models = Status(status, "Rate limit reached\n\x1b[31mfor this\x1b[0m organization")
    result = ask(capsys, "Hi")
    assert result.code == ExitCode.NETWORK
    line = one_error_line(result)
    assert expected in line, "the server's text is made one safe line"
    assert "\x1b" not in line


@pytest.mark.parametrize("status", [429, 500])
def test_a_server_that_fails_the_chat_request_shows_its_message(
    capsys: Capsys, fake: FakeOpenAI, status: int
) -> None:
    fake.chat = Status(status, "Rate limit reached")
    result = ask(capsys, "Hi")
    assert f"(HTTP {status}): Rate limit reached" in one_error_line(result)
    answer = last_answer(capsys)
    assert answer["finish_reason"] == "error"
    assert result.code == ExitCode.NETWORK


def test_a_server_message_quoting_the_key_is_not_shown(
    capsys: Capsys, fake: FakeOpenAI, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_servers(isolated_env, {"box": {"url": fake.url, "api_key_env": KEY_ENV}})
    monkeypatch.setenv(KEY_ENV, SECRET)
    fake.models = Status(500, f"upstream rejected Bearer {SECRET}")
    result = ask(capsys, "Hi")
    assert "upstream rejected" in one_error_line(result)
    assert SECRET not in result.err
    export = termllm(capsys, "history", "export", "--all", "-f", "json")
    assert SECRET not in export.out


def test_a_model_the_server_does_not_list_is_named_with_those_it_has(
    capsys: Capsys, fake: FakeOpenAI
) -> None:
    fake.models = Listing(("alpha", "beta"))
    result = ask(capsys, "Hi")
    assert result.code == ExitCode.NETWORK
    line = one_error_line(result)
    assert f"server 'box' has no model '{MODEL}'; it has: alpha, beta" in line
    assert fake.chat_requests() == []


def test_a_404_on_chat_lists_the_servers_models(capsys: Capsys, fake: FakeOpenAI) -> None:
    fake.models = Listing((MODEL, "other"))
    fake.chat = Status(404, "The model does not exist")
    result = ask(capsys, "Hi")
    line = one_error_line(result)
    assert f"server 'box' has no model '{MODEL}' (HTTP 404)" in line
    assert "it has: fake-model, other" in line
    assert result.code == ExitCode.NETWORK


def test_a_url_that_is_not_the_api_base_says_so(
    capsys: Capsys, fake: FakeOpenAI, isolated_env: Path
) -> None:
    write_servers(isolated_env, {"box": {"url": fake.url.removesuffix("/v1")}})
    result = ask(capsys, "Hi")
    assert result.code == ExitCode.NETWORK
    assert "has no /models (HTTP 404): is the URL the API's /v1 base?" in one_error_line(result)


def test_a_listing_that_is_not_the_openai_apis_is_one_line(
    capsys: Capsys, fake: FakeOpenAI
) -> None:
    fake.models = Raw(b"<html>hello</html>")
    result = ask(capsys, "Hi")
    assert result.code == ExitCode.NETWORK
    assert "sent a model list that is not the OpenAI API's" in one_error_line(result)


# Unreachable servers ------------------------------------------------------------------------


def test_a_closed_port_is_connection_refused_and_the_question_is_kept(
    capsys: Capsys, isolated_env: Path
) -> None:
    url = closed_port_url()
    write_servers(isolated_env, {"box": {"url": url}})
    result = ask(capsys, "Are you there?")
    assert result.code == ExitCode.NETWORK
    assert f"cannot reach server 'box' at {url}: connection refused" in one_error_line(result)
    answer = last_answer(capsys)
    assert answer["finish_reason"] == "error" and "connection refused" in answer["error"]


def test_an_unknown_host_says_so(capsys: Capsys, isolated_env: Path) -> None:
    # .invalid never resolves (RFC 2606): nothing leaves the machine.
    write_servers(isolated_env, {"box": {"url": "http://nohost.invalid:8080/v1", "timeout_s": 5}})
    started = time.monotonic()
    result = ask(capsys, "Hi")
    assert result.code == ExitCode.NETWORK
    assert "server 'box': unknown host in http://nohost.invalid:8080/v1" in one_error_line(result)
    assert time.monotonic() - started < 30


def test_credentials_in_the_url_are_never_shown(capsys: Capsys, isolated_env: Path) -> None:
    url = closed_port_url().replace("http://", f"http://me:{SECRET}@")
    write_servers(isolated_env, {"box": {"url": url}})
    result = ask(capsys, "Hi")
    assert "cannot reach server 'box'" in one_error_line(result)
    listed = termllm(capsys, "ls", "--json")
    for shown in (result, listed, termllm(capsys, "doctor")):
        assert SECRET not in shown.out + shown.err


def test_a_server_that_never_answers_the_listing_times_out(
    capsys: Capsys, fake: FakeOpenAI, isolated_env: Path
) -> None:
    write_servers(isolated_env, {"box": {"url": fake.url, "timeout_s": 1}})
    fake.models = Silent()
    started = time.monotonic()
    result = ask(capsys, "Hi")
    assert time.monotonic() - started < 10
    assert result.code == ExitCode.NETWORK
    line = one_error_line(result)
    assert "server 'box' sent nothing for 1 s (servers.box.timeout_s)" in line


def test_a_server_that_never_answers_the_chat_times_out(
    capsys: Capsys, fake: FakeOpenAI, isolated_env: Path
) -> None:
    write_servers(isolated_env, {"box": {"url": fake.url, "timeout_s": 1}})
    fake.chat = Silent()
    started = time.monotonic()
    result = ask(capsys, "Hi")
    assert time.monotonic() - started < 10
    assert "sent nothing for 1 s (servers.box.timeout_s)" in one_error_line(result)
    assert last_answer(capsys)["finish_reason"] == "error"
    assert result.code == ExitCode.NETWORK


# Broken streams -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunked", "reason"),
    [
        (True, "the connection to server 'box' broke before the answer ended"),
        (False, "the stream from server 'box' ended before the answer did"),
    ],
    ids=["chunked", "close-delimited"],
)
def test_a_stream_cut_mid_answer_keeps_the_partial_answer_as_an_error(
    capsys: Capsys, fake: FakeOpenAI, chunked: bool, reason: str
) -> None:
    fake.chat = Stream((content("Paris "), content("is the")), cut=True, chunked=chunked)
    result = ask(capsys, "Capital of France?")
    assert result.out.startswith("Paris is the")
    assert reason in one_error_line(result)
    answer = last_answer(capsys)
    assert (answer["content"], answer["finish_reason"]) == ("Paris is the", "error")
    assert reason in answer["error"]
    assert result.code == ExitCode.NETWORK


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"data: {not json\n\n", "an event that is not a JSON object ({not json)"),
        (b'data: ["a list"]\n\n', "an event that is not a JSON object"),
        (b"data: caf\xc3\n\n", "text that is not UTF-8"),
        (b'data: {"error": {"message": "out of\\nmemory"}}\n\n', "failed while answering: out of"),
    ],
    ids=["not-json", "not-an-object", "not-utf8", "error-event"],
)
def test_a_malformed_stream_is_one_line(
    capsys: Capsys, fake: FakeOpenAI, body: bytes, expected: str
) -> None:
    fake.chat = Raw(b'data: {"choices": [{"delta": {"content": "Hel"}}]}\n\n' + body)
    result = ask(capsys, "Hi")
    assert expected in one_error_line(result)
    assert result.out == "Hel\n", "what came before the bad event is kept"
    assert (last_answer(capsys)["content"], last_answer(capsys)["finish_reason"]) == (
        "Hel",
        "error",
    )
    assert result.code == ExitCode.NETWORK


def test_a_stream_that_sends_finish_but_no_done_is_complete(
    capsys: Capsys, fake: FakeOpenAI
) -> None:
    fake.chat = Raw(
        b'data: {"choices": [{"delta": {"content": "Hi."}, "finish_reason": null}]}\n\n'
        b'data: {"choices": [{"delta": {}, "finish_reason": "length"}]}\n\n'
    )
    result = ask(capsys, "--json", "Hi")
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert (answer["content"], answer["finish_reason"]) == ("Hi.", "length")
