"""A scriptable OpenAI-compatible server on 127.0.0.1, for the faults a real one rarely shows on
cue: error statuses, streams cut mid-answer, malformed events, silence, slow chunks.

Each test sets what GET /v1/models and POST /v1/chat/completions do (`models`, `chat`), and
reads back what the client sent (`requests`) and when it hung up (`disconnected_at`).
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODEL = "fake-model"


@dataclass(frozen=True)
class Listing:
    """GET /v1/models: these model ids."""

    models: tuple[str, ...] = (MODEL,)


@dataclass(frozen=True)
class Status:
    """An error status with the OpenAI API's error body."""

    code: int
    message: str


@dataclass(frozen=True)
class Stream:
    """A streamed completion: a chunk per delta, then the finish reason, the usage (when
    given) and `[DONE]`. `cut`: the socket closes after the deltas, with no finish reason,
    no `[DONE]` and (chunked) no last chunk. `chunked` False: the body ends with the
    connection, as HTTP/1.0 servers send it."""

    deltas: tuple[dict[str, str], ...]
    usage: dict[str, Any] | None = None
    finish_reason: str = "stop"
    cut: bool = False
    interval_s: float = 0.0
    """Seconds between chunks (watching whether the client hung up meanwhile)."""
    chunked: bool = True


@dataclass(frozen=True)
class Raw:
    """These bytes as an event stream (malformed events)."""

    body: bytes


@dataclass(frozen=True)
class Silent:
    """Reads the request, then answers nothing until the server stops."""


Behaviour = Listing | Status | Stream | Raw | Silent


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    """Names lowercased."""
    body: Any
    """The JSON body, None for a GET."""


@dataclass
class FakeOpenAI:
    url: str
    """The /v1 base."""
    models: Behaviour = field(default_factory=Listing)
    chat: Behaviour = field(default_factory=lambda: Stream(({"content": "Hello."},)))
    requests: list[Recorded] = field(default_factory=list)
    chunks_sent: int = 0
    disconnected_at: float | None = None
    """time.monotonic() when the client closed a stream before its end."""
    stopping: threading.Event = field(default_factory=threading.Event)

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]


def content(text: str) -> dict[str, str]:
    return {"content": text}


def sse(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def chunk(delta: dict[str, str], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows what the test asserts, not an access log."""

    def do_GET(self) -> None:
        self._answer(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(json.loads(self.rfile.read(length) or b"null"))

    def _answer(self, body: Any) -> None:
        fake = self.server.fake
        fake.requests.append(
            Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        self.close_connection = True
        if self.path == "/v1/models" and self.command == "GET":
            behaviour = fake.models
        elif self.path == "/v1/chat/completions" and self.command == "POST":
            behaviour = fake.chat
        else:
            behaviour = Status(404, f"no route {self.command} {self.path}")
        with contextlib.suppress(OSError):
            self._behave(fake, behaviour)

    def _behave(self, fake: FakeOpenAI, behaviour: Behaviour) -> None:
        if isinstance(behaviour, Silent):
            fake.stopping.wait()
        elif isinstance(behaviour, Status):
            body = json.dumps({"error": {"message": behaviour.message, "code": behaviour.code}})
            self._send(behaviour.code, "application/json", body.encode())
        elif isinstance(behaviour, Listing):
            listed = [{"id": model, "object": "model"} for model in behaviour.models]
            self._send(200, "application/json", json.dumps({"data": listed}).encode())
        elif isinstance(behaviour, Raw):
            self._send(200, "text/event-stream", behaviour.body)
        else:
            self._stream(fake, behaviour)

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, fake: FakeOpenAI, stream: Stream) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if stream.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        events = [sse(chunk(delta)) for delta in stream.deltas]
        if not stream.cut:
            events.append(sse(chunk({}, stream.finish_reason)))
            if stream.usage is not None:
                events.append(sse({**chunk({}), "choices": [], "usage": stream.usage}))
            events.append(b"data: [DONE]\n\n")
        for event in events:
            if stream.interval_s and self._hung_up_within(stream.interval_s):
                fake.disconnected_at = time.monotonic()
                return
            self._write(event, stream.chunked)
            fake.chunks_sent += 1
        if stream.chunked and not stream.cut:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write(self, data: bytes, chunked: bool) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        self.wfile.flush()

    def _hung_up_within(self, seconds: float) -> bool:
        """Whether the client closed its end in the next `seconds` (or the server stops)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self.server.fake.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], left)
            if readable:
                try:
                    peeked: bytes = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    return True
                return peeked == b""
        return self.server.fake.stopping.is_set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = FakeOpenAI(f"http://127.0.0.1:{self.server_address[1]}/v1")


@contextlib.contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    """The fake, serving on a free loopback port until the block ends; a silent or slow
    answer in progress is let go at once then."""
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.fake
    finally:
        server.fake.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def write_servers(home: Path, servers: dict[str, dict[str, str | float]]) -> Path:
    """config.toml under a termllm home with a [servers.NAME] table of these keys each."""
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    tables = [
        f"[servers.{name}]\n" + "".join(f"{key} = {json.dumps(v)}\n" for key, v in keys.items())
        for name, keys in servers.items()
    ]
    config.write_text("\n".join(tables), encoding="utf-8")
    return config
