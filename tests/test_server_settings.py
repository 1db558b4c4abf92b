"""`[servers.NAME]` tables and TERMLLM_SERVERS_* variables: read, checked, shown without keys."""

import json
from pathlib import Path

import pytest
from termllm_cli import termllm

from termllm.config import load_config
from termllm.errors import ConfigError
from termllm.server_settings import DEFAULT_TIMEOUT_S, ServerSettings

Capsys = pytest.CaptureFixture[str]
SECRET = "sk-very-secret-0123456789"


def write_config(home: Path, text: str) -> Path:
    path = home / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def servers(home: Path, text: str, **env: str) -> tuple[ServerSettings, ...]:
    write_config(home, text)
    return load_config({"TERMLLM_HOME": str(home), **env}).settings.servers


def config_error(home: Path, text: str, **env: str) -> str:
    write_config(home, text)
    with pytest.raises(ConfigError) as caught:
        load_config({"TERMLLM_HOME": str(home), **env})
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_server_tables_are_read_in_order(isolated_env: Path) -> None:
    text = (
        "[models]\ncontext_size = 2048\n\n"
        '[servers.box]\nurl = "http://10.0.0.5:8080/v1/"\napi_key_env = "BOX_KEY"\n'
        "timeout_s = 30\n\n"
        '[servers."lab-2"]\nurl = "https://lab.example.com/v1"\n'
    )
    assert servers(isolated_env, text) == (
        ServerSettings("box", "http://10.0.0.5:8080/v1", "BOX_KEY", 30.0),
        ServerSettings("lab-2", "https://lab.example.com/v1", "", DEFAULT_TIMEOUT_S),
    )
    assert load_config({"TERMLLM_HOME": str(isolated_env)}).settings.models.context_size == 2048


def test_no_servers_by_default(isolated_env: Path) -> None:
    assert load_config({"TERMLLM_HOME": str(isolated_env)}).settings.servers == ()


def test_an_unknown_key_names_the_file_its_line_and_the_key(isolated_env: Path) -> None:
    text = f'[servers.box]\nurl = "http://h/v1"\n\napi_key = "{SECRET}"\n'
    message = config_error(isolated_env, text)
    assert "config.toml:4: servers.box.api_key: unknown key" in message
    assert "api_key_env" in message, "the known keys are listed"
    assert SECRET not in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"ftp://h/v1"', "expected an http:// or https:// URL"),
        ('"localhost:8080/v1"', "expected an http:// or https:// URL"),
        ('"http:///v1"', "expected an http:// or https:// URL"),
        ('"http://h:port/v1"', "expected an http:// or https:// URL"),
        ('"http://h/v1?key=1"', "must not have a query or fragment"),
        ('"http://h/v1#x"', "must not have a query or fragment"),
        ("8080", "expected text"),
    ],
)
def test_a_bad_url_is_one_line_naming_the_key(
    isolated_env: Path, value: str, expected: str
) -> None:
    message = config_error(isolated_env, f"[servers.box]\n\nurl = {value}\n")
    assert "config.toml:3: servers.box.url" in message
    assert expected in message


@pytest.mark.parametrize("value", ["0", "-1", "3601", "nan", "inf", '"30"', "true"])
def test_a_bad_timeout_is_one_line_naming_the_key(isolated_env: Path, value: str) -> None:
    message = config_error(
        isolated_env, f'[servers.box]\nurl = "http://h/v1"\ntimeout_s = {value}\n'
    )
    assert "config.toml:3: servers.box.timeout_s: expected" in message


@pytest.mark.parametrize("value", ["BOX-KEY", "1KEY", SECRET, "MY KEY"])
def test_an_api_key_env_that_is_not_a_variable_name_is_refused_without_echoing_it(
    isolated_env: Path, value: str
) -> None:
    text = f'[servers.box]\nurl = "http://h/v1"\napi_key_env = "{value}"\n'
    message = config_error(isolated_env, text)
    assert "config.toml:3: servers.box.api_key_env: expected the name of an environment" in message
    assert value not in message


def test_a_server_without_a_url_is_an_error(isolated_env: Path) -> None:
    message = config_error(isolated_env, '[models]\n\n[servers.box]\napi_key_env = "K"\n')
    assert "config.toml:3: servers.box: a server needs a url" in message


@pytest.mark.parametrize("name", ["BOX", '"my box"', '"-box"', '"box.lan"', '""'])
def test_a_bad_server_name_is_an_error(isolated_env: Path, name: str) -> None:
    message = config_error(isolated_env, f'[servers.{name}]\nurl = "http://h/v1"\n')
    assert "a server name is lowercase letters, digits, - and _" in message


def test_a_server_that_is_not_a_table_is_an_error(isolated_env: Path) -> None:
    message = config_error(isolated_env, '[servers]\nbox = "http://h/v1"\n')
    assert "servers.box: must be a [servers.box] table" in message


def test_the_environment_overrides_a_file_server_and_adds_one(isolated_env: Path) -> None:
    text = '[servers.box]\nurl = "http://h/v1"\n[servers.my-box]\nurl = "http://m/v1"\n'
    found = servers(
        isolated_env,
        text,
        TERMLLM_SERVERS_BOX_URL="http://other:9000/v1/",
        TERMLLM_SERVERS_BOX_TIMEOUT_S="5",
        TERMLLM_SERVERS_MY_BOX_API_KEY_ENV="MY_BOX_KEY",
        TERMLLM_SERVERS_LAB_URL="https://lab/v1",
        TERMLLM_SERVERS_LAB_API_KEY_ENV="LAB_KEY",
    )
    assert found == (
        ServerSettings("box", "http://other:9000/v1", "", 5.0),
        ServerSettings("my-box", "http://m/v1", "MY_BOX_KEY"),
        ServerSettings("lab", "https://lab/v1", "LAB_KEY"),
    )


def test_a_variable_names_a_file_server_whatever_its_case(isolated_env: Path) -> None:
    text = '[servers.box]\nurl = "http://h/v1"\n'
    found = servers(isolated_env, text, TERMLLM_SERVERS_box_TIMEOUT_S="5")
    assert found == (ServerSettings("box", "http://h/v1", "", 5.0),)


def test_servers_that_is_not_a_table_of_tables_says_how_to_write_it(isolated_env: Path) -> None:
    message = config_error(isolated_env, "servers = 5\n")
    assert "config.toml:1:" in message and "[servers.NAME]" in message


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "TERMLLM_SERVERS_BOX_TIMEOUT_S",
            "soon",
            "TERMLLM_SERVERS_BOX_TIMEOUT_S: expected a number",
        ),
        (
            "TERMLLM_SERVERS_BOX_TIMEOUT_S",
            "0",
            "TERMLLM_SERVERS_BOX_TIMEOUT_S: expected more than 0",
        ),
        ("TERMLLM_SERVERS_BOX_URL", "box:80", "TERMLLM_SERVERS_BOX_URL: expected an http://"),
        ("TERMLLM_SERVERS_BOX_COLOUR", "red", "TERMLLM_SERVERS_BOX_COLOUR: expected"),
        ("TERMLLM_SERVERS_URL", "http://h/v1", "TERMLLM_SERVERS_URL: expected"),
        ("TERMLLM_SERVERS_LAB_API_KEY_ENV", "K", "a server needs a url"),
        ("TERMLLM_SERVERS_LA$B_URL", "http://h/v1", "is not a server name"),
        ("TERMLLM_SERVERS_BOX_API_KEY_ENV", SECRET, "expected the name of an environment"),
    ],
)
def test_a_bad_server_variable_is_one_line_naming_it(
    isolated_env: Path, variable: str, value: str, expected: str
) -> None:
    message = config_error(
        isolated_env, '[servers.box]\nurl = "http://h/v1"\n', **{variable: value}
    )
    assert expected in message
    assert SECRET not in message


def test_config_show_lists_servers_with_the_keys_variable_never_the_key(
    capsys: Capsys, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = '[servers.box]\nurl = "http://10.1.2.3:8080/v1"\napi_key_env = "BOX_KEY"\n'
    write_config(isolated_env, text)
    monkeypatch.setenv("BOX_KEY", SECRET)
    monkeypatch.setenv("TERMLLM_SERVERS_LAB_URL", "https://lab/v1")
    shown = termllm(capsys, "config", "show", "--json")
    assert shown.code == 0, shown.err
    settings = json.loads(shown.out)["settings"]
    assert settings["servers.box.url"] == "http://10.1.2.3:8080/v1"
    assert settings["servers.box.api_key_env"] == "BOX_KEY"
    assert settings["servers.box.timeout_s"] == DEFAULT_TIMEOUT_S
    assert settings["servers.lab.url"] == "https://lab/v1"
    table = termllm(capsys, "config", "show")
    assert table.code == 0, table.err
    assert "servers.box.api_key_env" in table.out and "'BOX_KEY'" in table.out
    for result in (shown, table):
        assert SECRET not in result.out + result.err
