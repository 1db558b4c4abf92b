"""llama-cpp-python's own OpenAI-compatible server, run for real on 127.0.0.1 with the starter
model, and the config lines that point termllm at a server."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

MODEL_ALIAS = "smol"
STARTUP_S = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def llama_cpp_server(model: Path, log_file: Path) -> Iterator[str]:
    """The server's /v1 base URL while it runs; it is stopped on leaving."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
        "--n_threads", "2", "--model_alias", MODEL_ALIAS,
    ]  # fmt: skip
    with log_file.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_listing(url, server, log_file)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_listing(url: str, server: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited: {log_file.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                if json.load(response)["data"]:
                    return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"llama_cpp.server did not start: {log_file.read_text()[-2000:]}")


def write_servers(home: Path, servers: dict[str, str], extra: str = "") -> Path:
    """A config.toml under a termllm home naming these servers (name → /v1 URL)."""
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    tables = "".join(f'[servers.{name}]\nurl = "{url}"\n' for name, url in servers.items())
    config.write_text(tables + extra, encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def server_url(starter_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real llama_cpp.server serving the starter model as `smol`, for one test module."""
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with llama_cpp_server(starter_model, log) as url:
        yield url
