"""ServerService against the fake server: finding, connecting, listing, and the one warning
about an API key sent unencrypted to another machine."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_openai import MODEL, FakeOpenAI, Listing, closed_port_url, fake_openai, write_servers

from termllm.config import load_config
from termllm.domain import ServerModel, ServerRef
from termllm.errors import ModelNotFoundError, ServerError
from termllm.services import servers as servers_module
from termllm.services.servers import ServerService, _unencrypted_off_machine

KEY_ENV = "BOX_API_KEY"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with fake_openai() as server:
        yield server


def service(home: Path, servers: dict[str, dict[str, str | float]], **env: str) -> ServerService:
    write_servers(home, servers)
    full_env = {"TERMLLM_HOME": str(home), **env}
    return ServerService(load_config(full_env), full_env)


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://10.0.0.5:8080/v1", True),
        ("http://gpu-box.lan/v1", True),
        ("http://example.com/v1", True),
        ("http://[2001:db8::1]:8000/v1", True),
        ("http://0.0.0.0:8000/v1", True),
        ("http://127.0.0.1:8080/v1", False),
        ("http://127.3.2.1/v1", False),
        ("http://localhost:11434/v1", False),
        ("http://LOCALHOST:11434/v1", False),
        ("http://[::1]:8000/v1", False),
        ("https://10.0.0.5/v1", False),
        ("https://api.example.com/v1", False),
    ],
)
def test_plain_http_off_this_machine_is_what_is_warned_about(url: str, warned: bool) -> None:
    assert _unencrypted_off_machine(url) is warned


def test_connect_warns_once_about_a_key_over_plain_http(
    isolated_env: Path, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers = service(
        isolated_env, {"box": {"url": fake.url, "api_key_env": KEY_ENV}}, **{KEY_ENV: "sk-1"}
    )
    model = ServerModel("box", MODEL)
    assert servers.connect(model).report.warnings == (), "loopback: nothing to warn about"
    # The fake is on loopback: stand it in for a machine across the network.
    monkeypatch.setattr(servers_module, "_unencrypted_off_machine", lambda url: True)
    [warning] = servers.connect(model).report.warnings
    assert "server 'box' is reached over plain http://" in warning
    assert f"${KEY_ENV}" in warning and "sk-1" not in warning
    assert servers.connect(model).report.warnings == (), "said once per process"


def test_no_warning_without_a_key(
    isolated_env: Path, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(servers_module, "_unencrypted_off_machine", lambda url: True)
    servers = service(isolated_env, {"box": {"url": fake.url, "api_key_env": KEY_ENV}})
    assert servers.connect(ServerModel("box", MODEL)).report.warnings == ()


def test_connect_reports_the_server_and_the_listed_context(
    isolated_env: Path, fake: FakeOpenAI
) -> None:
    servers = service(isolated_env, {"box": {"url": fake.url}})
    loaded = servers.connect(ServerModel("box", MODEL))
    assert loaded.report.server == "box" and loaded.report.n_ctx == 0
    assert loaded.state_identity == f"server|box|{MODEL}"
    loaded.close()


def test_an_ollama_name_matches_its_latest_tag(isolated_env: Path, fake: FakeOpenAI) -> None:
    fake.models = Listing(("qwen3:latest",))
    servers = service(isolated_env, {"box": {"url": fake.url}})
    assert servers.connect(ServerModel("box", "qwen3")).state_identity == "server|box|qwen3:latest"
    with pytest.raises(ServerError, match="has no model 'qwen3:8b'; it has: qwen3:latest"):
        servers.connect(ServerModel("box", "qwen3:8b"))


def test_find_names_the_configured_servers(isolated_env: Path, fake: FakeOpenAI) -> None:
    servers = service(isolated_env, {"box": {"url": fake.url}, "lab": {"url": fake.url}})
    assert servers.find(ServerRef("box", "m")) == ServerModel("box", "m")
    with pytest.raises(ModelNotFoundError, match=r"no server 'nas'.*servers: @box/…, @lab/…"):
        servers.find(ServerRef("nas", "m"))
    assert fake.requests == [], "finding asks no server"


def test_listings_keep_the_config_order_and_say_why_one_failed(
    isolated_env: Path, fake: FakeOpenAI
) -> None:
    down = closed_port_url()
    servers = service(isolated_env, {"down": {"url": down}, "box": {"url": fake.url}})
    first, second = servers.listings()
    assert (first.name, first.models, second.name) == ("down", (), "box")
    assert first.error is not None and "connection refused" in first.error
    assert second.error is None and [m.ref for m in second.models] == [f"@box/{MODEL}"]
