"""Talking to one OpenAI-compatible server: its model list and streamed chat completions, every
failure turned into one line that names the server (and never the API key)."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2

from termllm.errors import ServerError
from termllm.remote.sse import EventReader, MalformedStream
from termllm.safe_text import one_line

MAX_LISTING_BYTES = 8 * 1024 * 1024
"""A model list or an error body larger than this is not one a server means to send."""
ERROR_CHARS = 200
"""Most characters of a server's own error message quoted in ours."""


class UnknownServerModel(ServerError):
    """The server does not serve the model asked for."""


@dataclass(frozen=True)
class Server:
    """Where a server is and how to talk to it, as the config names it."""

    name: str
    url: str
    """The `/v1` base, without a trailing slash."""
    timeout_s: float
    api_key: str | None = None
    api_key_env: str = ""

    @property
    def shown_url(self) -> str:
        """The URL as errors show it: without any user:password part."""
        scheme, sep, rest = self.url.partition("://")
        host_part, slash, path = rest.partition("/")
        host = host_part.rpartition("@")[2]
        return one_line(f"{scheme}{sep}{host}{slash}{path}", 120)

    def redacted(self, text: str) -> str:
        """What a server said, without the secrets it was sent: some servers quote the key
        they refused (OpenAI's 401 does), or the URL's password."""
        password = urlsplit(self.url).password
        for secret in (self.api_key, password):
            if secret:
                text = text.replace(secret, "***")
        return text


@dataclass(frozen=True)
class ListedModel:
    model_id: str
    context_size: int | None
    """The context the server serves, where its listing says (vLLM's `max_model_len`)."""


class ServerClient:
    def __init__(self, server: Server) -> None:
        self.server = server
        self._http = self._connection_pool()

    def _connection_pool(self) -> httpx2.Client:
        headers = {"Accept": "application/json"}
        if self.server.api_key:
            headers["Authorization"] = f"Bearer {self.server.api_key}"
        # Redirects are not followed: the key would go along to wherever they point.
        return httpx2.Client(
            headers=headers, timeout=httpx2.Timeout(self.server.timeout_s), follow_redirects=False
        )

    def close(self) -> None:
        self._http.close()

    def reopen(self) -> None:
        """A fresh pool after `close` cut a stream short."""
        self._http = self._connection_pool()

    def list_models(self) -> tuple[ListedModel, ...]:
        with self._request("GET", "/models") as response:
            body = _read_bounded(response, self.server)
        try:
            listed = json.loads(body)["data"]
            return tuple(_listed(item) for item in listed if isinstance(item, dict))
        except (ValueError, KeyError, TypeError):
            raise ServerError(
                f"server '{self.server.name}' at {self.server.shown_url} sent a model list"
                " that is not the OpenAI API's (GET /models)"
            ) from None

    @contextmanager
    def chat(self, payload: dict[str, Any]) -> Iterator[ChatStream]:
        """A streamed chat completion: the response is open while the block runs; leaving
        the block closes it, which stops the server's generation."""
        with self._request("POST", "/chat/completions", payload) as response:
            yield ChatStream(response, self.server)

    @contextmanager
    def _request(
        self, method: str, path: str, payload: dict[str, Any] | None = None
    ) -> Iterator[httpx2.Response]:
        server = self.server
        try:
            with self._http.stream(method, server.url + path, json=payload) as response:
                if response.status_code >= 400:
                    body = _read_bounded(response, server)
                    raise http_error(server, response.status_code, body, payload)
                yield response
        except httpx2.TransportError as err:
            raise transport_error(server, err) from None


class ChatStream:
    """The JSON objects of one streamed completion, in order, until the server's `[DONE]`."""

    def __init__(self, response: httpx2.Response, server: Server) -> None:
        self._response = response
        self._server = server
        self.done = False
        """The server said the answer is complete (`[DONE]`, or a finish reason)."""

    def abort(self) -> None:
        """Cut the connection now, from any thread. Closing is not enough while another
        thread waits on the socket: the connection then stays open, and the server keeps
        generating, until the server's next byte arrives."""
        stream = self._response.extensions.get("network_stream")
        found = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(found, socket.socket):
            with contextlib.suppress(OSError):  # already closed by the server
                found.shutdown(socket.SHUT_RDWR)

    def objects(self) -> Iterator[dict[str, Any]]:
        reader = EventReader()
        server = self._server
        try:
            for piece in self._response.iter_raw():
                for event in reader.feed(piece):
                    found = self._object(event.data)
                    if found is None:
                        return
                    yield found
            for event in reader.close():
                found = self._object(event.data)
                if found is None:
                    return
                yield found
        except MalformedStream as err:
            raise ServerError(f"server '{server.name}' sent a malformed stream: {err}") from None
        except httpx2.TransportError as err:
            raise transport_error(server, err, during_answer=True) from None

    def _object(self, data: str) -> dict[str, Any] | None:
        if data.strip() == "[DONE]":
            self.done = True
            return None
        try:
            found = json.loads(data)
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise ServerError(
                f"server '{self._server.name}' sent a malformed stream: an event that is not"
                f" a JSON object ({one_line(self._server.redacted(data), 60)})"
            )
        if "error" in found:
            said = _message_of(found, self._server)
            raise ServerError(f"server '{self._server.name}' failed while answering: {said}")
        return found


def http_error(
    server: Server, status: int, body: bytes, payload: dict[str, Any] | None
) -> ServerError:
    """What an error status means for the user, with the server's own message."""
    said = _message_of(_json_or_none(body), server) or one_line(
        server.redacted(body.decode("utf-8", "replace")), ERROR_CHARS
    )
    name = f"server '{server.name}'"
    if status in (401, 403):
        if server.api_key:
            check = f"check the key in ${server.api_key_env}"
        elif server.api_key_env:
            check = f"${server.api_key_env} is not set"
        else:
            check = f"set servers.{server.name}.api_key_env to the variable that holds the key"
        return ServerError(f"{name} refused the request (HTTP {status}): {check}")
    if status == 404 and payload is not None:
        model = one_line(str(payload.get("model", "")), 80)
        return UnknownServerModel(f"{name} has no model '{model}' (HTTP 404){_with(said)}")
    if status == 404:
        return ServerError(
            f"{name} at {server.shown_url} has no {_path_hint(payload)} (HTTP 404): is the URL"
            " the API's /v1 base?"
        )
    if status == 429:
        return ServerError(f"{name} is busy (HTTP 429){_with(said)}; try again later")
    if status >= 500:
        return ServerError(f"{name} failed (HTTP {status}){_with(said)}")
    return ServerError(f"{name} refused the request (HTTP {status}){_with(said)}")


def transport_error(
    server: Server, err: httpx2.TransportError, *, during_answer: bool = False
) -> ServerError:
    name = f"server '{server.name}'"
    if isinstance(err, httpx2.ConnectTimeout):
        return ServerError(
            f"{name} at {server.shown_url} did not accept a connection within"
            f" {server.timeout_s:g} s (servers.{server.name}.timeout_s)"
        )
    if isinstance(err, httpx2.TimeoutException):
        return ServerError(
            f"{name} sent nothing for {server.timeout_s:g} s (servers.{server.name}.timeout_s)"
        )
    if during_answer:
        return ServerError(f"the connection to {name} broke before the answer ended")
    if isinstance(err, httpx2.ConnectError):
        cause = err.__cause__ or err.__context__
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, socket.gaierror) or "name" in str(err).lower():
            return ServerError(f"{name}: unknown host in {server.shown_url}")
        return ServerError(f"cannot reach {name} at {server.shown_url}: connection refused")
    said = one_line(server.redacted(str(err)), 120)
    return ServerError(f"cannot reach {name} at {server.shown_url}: {said}")


def _read_bounded(response: httpx2.Response, server: Server) -> bytes:
    body = bytearray()
    try:
        for piece in response.iter_raw():
            body += piece
            if len(body) > MAX_LISTING_BYTES:
                raise ServerError(
                    f"server '{server.name}' sent more than"
                    f" {MAX_LISTING_BYTES // (1024 * 1024)} MiB where a short answer was due"
                )
    except httpx2.TransportError as err:
        raise transport_error(server, err) from None
    return bytes(body)


def _listed(item: dict[str, Any]) -> ListedModel:
    model_id = item["id"]
    if not isinstance(model_id, str) or not model_id:
        raise TypeError("a model without an id")
    context: int | None = None
    for key in ("max_model_len", "context_length", "context_window"):
        value = item.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            context = value
            break
    return ListedModel(model_id, context)


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _message_of(found: Any, server: Server) -> str:
    """The message an OpenAI-style error body carries ({"error": {"message": …}} and kin)."""
    if isinstance(found, dict):
        error = found.get("error", found.get("detail", found.get("message")))
        if isinstance(error, dict):
            error = error.get("message", "")
        if isinstance(error, str):
            return one_line(server.redacted(error), ERROR_CHARS)
        if error is not None:
            return one_line(server.redacted(json.dumps(error)), ERROR_CHARS)
    return ""


def _with(said: str) -> str:
    return f": {said}" if said else ""


def _path_hint(payload: dict[str, Any] | None) -> str:
    return "/models" if payload is None else "/chat/completions"
