"""The OpenAI-compatible servers of the config: their models, for `ls`, the model picker and
`doctor`, and a model of theirs made ready to answer. Nothing here imports the HTTP client
until a server is used, so `ls` and `--help` without servers stay as fast as before."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from termllm.config import Config
from termllm.domain import ServerModel, ServerRef
from termllm.errors import ModelNotFoundError, ServerError, TermllmError
from termllm.safe_text import one_line
from termllm.server_settings import ServerSettings

if TYPE_CHECKING:
    from termllm.engine.base import LoadedModel
    from termllm.remote.client import ListedModel, Server


@dataclass(frozen=True)
class ServerListing:
    """What one server said when asked for its models."""

    name: str
    url: str
    """As it may be shown: without any user:password part."""
    models: tuple[ServerModel, ...]
    error: str | None
    """Why it could not be listed (None: it answered)."""
    answer_ms: float


class ServerService:
    def __init__(self, config: Config, env: Mapping[str, str]) -> None:
        self._servers = {server.name: server for server in config.settings.servers}
        self._env = env
        self._warned_plain_http: set[str] = set()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._servers)

    def listings(self) -> list[ServerListing]:
        """Every server's models, asked in parallel: one that is down costs its own timeout,
        not the sum of all."""
        if not self._servers:
            return []
        # Imported here: concurrent.futures brings logging, which `ask` without servers
        # would pay for at start-up.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(8, len(self._servers))) as pool:
            return list(pool.map(self._listing, self._servers.values()))

    def find(self, ref: ServerRef) -> ServerModel:
        """The model a `@server/model` reference names, once its server is known to the
        config (whether the server has it is asked when it is used)."""
        if ref.server not in self._servers:
            known = ", ".join(f"@{name}/…" for name in self._servers) or "none is configured"
            raise ModelNotFoundError(
                f"no server '{ref.server}' in the config ([servers.{ref.server}] with a url);"
                f" servers: {known}"
            )
        return ServerModel(ref.server, ref.model_id)

    def connect(self, model: ServerModel) -> LoadedModel:
        """The model ready to answer, once its server has listed it (which tells the context
        it serves, where the server says, and that it is up)."""
        from termllm.remote.client import ServerClient
        from termllm.remote.model import ServerModelSession

        server = self._server(self._servers[model.server])
        client = ServerClient(server)
        started = time.perf_counter()
        try:
            listed = client.list_models()
            found = _match(model.model_id, listed)
            if found is None:
                names = ", ".join(one_line(item.model_id, 60) for item in listed[:10]) or "none"
                raise ServerError(
                    f"server '{server.name}' has no model '{one_line(model.model_id, 80)}';"
                    f" it has: {names}"
                )
        except TermllmError:
            client.close()
            raise
        connect_ms = (time.perf_counter() - started) * 1000
        return ServerModelSession(
            client, found.model_id, found.context_size, connect_ms, self._warnings(server)
        )

    def _listing(self, settings: ServerSettings) -> ServerListing:
        from termllm.remote.client import ServerClient

        server = self._server(settings)
        client = ServerClient(server)
        started = time.perf_counter()
        try:
            listed = client.list_models()
        except TermllmError as err:
            return ServerListing(server.name, server.shown_url, (), err.message, 0.0)
        finally:
            client.close()
        answer_ms = (time.perf_counter() - started) * 1000
        models = tuple(
            ServerModel(server.name, item.model_id, item.context_size) for item in listed
        )
        return ServerListing(server.name, server.shown_url, models, None, answer_ms)

    def _server(self, settings: ServerSettings) -> Server:
        from termllm.remote.client import Server

        key = self._env.get(settings.api_key_env) if settings.api_key_env else None
        return Server(
            settings.name, settings.url, settings.timeout_s, key or None, settings.api_key_env
        )

    def _warnings(self, server: Server) -> tuple[str, ...]:
        if not server.api_key or not _unencrypted_off_machine(server.url):
            return ()
        if server.name in self._warned_plain_http:
            return ()
        self._warned_plain_http.add(server.name)
        return (
            f"server '{server.name}' is reached over plain http:// on another machine: its API"
            f" key (${server.api_key_env}) travels unencrypted",
        )


def _match(model_id: str, listed: Sequence[ListedModel]) -> ListedModel | None:
    """The listed model a reference names: its exact id, or Ollama's `name` for `name:latest`."""
    for item in listed:
        if item.model_id == model_id:
            return item
    return next((item for item in listed if item.model_id == f"{model_id}:latest"), None)


def _unencrypted_off_machine(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True
