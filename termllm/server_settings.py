"""The `[servers.NAME]` tables of config.toml and their TERMLLM_SERVERS_NAME_KEY variables.

A server is named once and referred to as `@NAME/model-id`; its key is never in the config,
only the name of the variable that holds it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from termllm.errors import ConfigError
from termllm.safe_text import one_line

SERVERS = "servers"
ENV_PREFIX = "TERMLLM_SERVERS_"
DEFAULT_TIMEOUT_S = 120.0
MAX_TIMEOUT_S = 3600.0
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True)
class ServerSettings:
    """An OpenAI-compatible server."""

    name: str = field(metadata=_doc("How references name it: @NAME/model-id."))
    url: str = field(default="", metadata=_doc("The API's /v1 base, e.g. http://host:8080/v1."))
    api_key_env: str = field(
        default="", metadata=_doc("The environment variable holding its API key (not the key).")
    )
    timeout_s: float = field(
        default=DEFAULT_TIMEOUT_S,
        metadata=_doc("Seconds (at most 3600) to connect, for the first byte, and between bytes."),
    )


_KEYS = [item.name for item in fields(ServerSettings) if item.name != "name"]


def read_servers(
    tables: Mapping[str, Any], text: str, config_file: Path
) -> tuple[ServerSettings, ...]:
    """The servers of config.toml's `[servers.NAME]` tables, each value checked."""
    servers: list[ServerSettings] = []
    for name, table in tables.items():
        table_line = _line_of_table(text, name)
        where = f"{config_file}:{table_line}: servers.{one_line(name, 40)}"
        if not _NAME.match(name):
            raise ConfigError(
                f"{where}: a server name is lowercase letters, digits, - and _ (at most 64)"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a [servers.{name}] table")
        server = ServerSettings(name)
        for key, value in table.items():
            at = (
                f"{config_file}:{_line_of_key(text, table_line, key)}:"
                f" servers.{name}.{one_line(key, 40)}"
            )
            if key not in _KEYS:
                raise ConfigError(f"{at}: unknown key (known: {', '.join(_KEYS)})")
            server = replace(server, **{key: _checked(key, value, at)})
        servers.append(_complete(server, where))
    return tuple(servers)


def servers_from_env(
    servers: tuple[ServerSettings, ...], env: Mapping[str, str]
) -> tuple[ServerSettings, ...]:
    """TERMLLM_SERVERS_NAME_URL (and _API_KEY_ENV, _TIMEOUT_S) over the file's servers; a
    name the file does not have adds a server (dashes are written as underscores there)."""
    by_env_name = {_env_name(server.name): server for server in servers}
    changed: dict[str, ServerSettings] = {}
    for variable in sorted(env):
        if not variable.startswith(ENV_PREFIX):
            continue
        rest = variable[len(ENV_PREFIX) :]
        key = next((k for k in _KEYS if rest.endswith("_" + k.upper())), None)
        # Variables are case-sensitive, names are not: TERMLLM_SERVERS_box_URL is box's.
        env_name = rest[: -len(key) - 1].upper() if key else ""
        if key is None or not env_name:
            raise ConfigError(
                f"{variable}: expected {ENV_PREFIX}NAME_KEY with KEY one of"
                f" {', '.join(k.upper() for k in _KEYS)}"
            )
        server = changed.get(env_name) or by_env_name.get(env_name)
        if server is None:
            name = env_name.lower()
            if not _NAME.match(name):
                raise ConfigError(f"{variable}: '{one_line(name, 40)}' is not a server name")
            server = ServerSettings(name)
        value: Any = env[variable]
        if key == "timeout_s":
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{variable}: expected a number, got {_quoted(value)}") from None
        changed[env_name] = replace(server, **{key: _checked(key, value, variable)})
    result = [changed.pop(_env_name(server.name), server) for server in servers]
    result += [_complete(server, f"{ENV_PREFIX}{name}_URL") for name, server in changed.items()]
    return tuple(_complete(server, f"servers.{server.name}") for server in result)


def describe_servers(servers: tuple[ServerSettings, ...]) -> list[tuple[str, Any, str]]:
    """Each server's settings as `config show` lists them: the key's variable, not the key."""
    rows: list[tuple[str, Any, str]] = []
    for server in servers:
        for item in fields(ServerSettings):
            if item.name != "name":
                rows.append(
                    (
                        f"servers.{server.name}.{item.name}",
                        getattr(server, item.name),
                        item.metadata["doc"],
                    )
                )
    return rows


def _checked(key: str, value: Any, where: str) -> Any:
    if key == "timeout_s":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {_quoted(value)}")
        if not 0 < value <= MAX_TIMEOUT_S:
            raise ConfigError(
                f"{where}: expected more than 0 and at most {MAX_TIMEOUT_S:g}, got {_quoted(value)}"
            )
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected text, got {_quoted(value)}")
    if key == "url":
        return _checked_url(value.strip(), where)
    if value and not _ENV_NAME.match(value):
        raise ConfigError(
            f"{where}: expected the name of an environment variable (the key itself never goes"
            " in the config)"
        )
    return value


def _checked_url(url: str, where: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        host = None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(
            f"{where}: expected an http:// or https:// URL of the API's /v1 base,"
            f" got {_quoted(url)}"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{where}: the URL must not have a query or fragment")
    return url.rstrip("/")


def _complete(server: ServerSettings, where: str) -> ServerSettings:
    if not server.url:
        raise ConfigError(f"{where}: a server needs a url (the API's /v1 base)")
    return server


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _line_of_table(text: str, name: str) -> int:
    pattern = re.compile(rf"^\s*\[\s*servers\s*\.\s*[\"']?{re.escape(name)}[\"']?\s*\]")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return 1


def _line_of_key(text: str, table_line: int, key: str) -> int:
    """The line that sets `key` in the table starting at `table_line` (that line if none does),
    so that a bad value is found where it is written."""
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for number, line in enumerate(text.splitlines()[table_line:], start=table_line + 1):
        if line.lstrip().startswith("["):
            break
        if pattern.match(line):
            return number
    return table_line


def _quoted(value: Any) -> str:
    return one_line(repr(value), 60)
