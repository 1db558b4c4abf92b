from pathlib import Path

import pytest

from termllm.config import load_config
from termllm.errors import ConfigError


def write_config(home: Path, text: str) -> Path:
    path = home / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_termllm_home_relocates_everything(isolated_env: Path) -> None:
    config = load_config()
    assert config.settings.models.context_size == 4096
    assert config.paths.config_file == isolated_env / "config" / "config.toml"
    for folder in (config.paths.data_dir, config.paths.state_dir, config.paths.log_dir):
        assert folder.is_relative_to(isolated_env)
    assert not isolated_env.exists(), "loading settings must not create folders"


def test_file_then_environment_then_overrides(isolated_env: Path) -> None:
    write_config(isolated_env, "[models]\ncontext_size = 2048\ndefault = 'a/b:Q8_0'\n")
    assert load_config().settings.models.context_size == 2048
    env = {"TERMLLM_HOME": str(isolated_env), "TERMLLM_MODELS_CONTEXT_SIZE": "1024"}
    assert load_config(env).settings.models.context_size == 1024
    config = load_config(env, overrides={"models.context_size": 512})
    assert config.settings.models.context_size == 512
    assert config.settings.models.default == "a/b:Q8_0"


def test_hub_settings_follow_the_hf_variables(isolated_env: Path, tmp_path: Path) -> None:
    env = {
        "TERMLLM_HOME": str(isolated_env),
        "HF_ENDPOINT": "http://127.0.0.1:1234/",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hfhome"),
    }
    config = load_config(env)
    assert config.hub_endpoint == "http://127.0.0.1:1234"
    assert config.settings.hub.offline is True
    assert config.paths.hub_cache == tmp_path / "hfhome" / "hub"
    env["HF_HUB_CACHE"] = str(tmp_path / "cache")
    assert load_config(env).paths.hub_cache == tmp_path / "cache"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[models]\ncontext_size = 'big'\n", "config.toml:2: models.context_size: expected int"),
        ("[models]\n\n# comment\ncolour = 1\n", "config.toml:4: models.colour: unknown key"),
        ("[modles]\nx = 1\n", "config.toml:1: unknown section [modles]"),
        ("[models]\ncontext_size = \n", "invalid TOML"),
        ("[hub]\noffline = 'yes'\n", "config.toml:2: hub.offline: expected bool"),
    ],
)
def test_a_broken_config_names_file_line_and_key(
    isolated_env: Path, text: str, expected: str
) -> None:
    write_config(isolated_env, text)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_bad_environment_value_names_the_variable(isolated_env: Path) -> None:
    env = {"TERMLLM_HOME": str(isolated_env), "TERMLLM_HUB_TIMEOUT_S": "soon"}
    with pytest.raises(ConfigError, match="TERMLLM_HUB_TIMEOUT_S: expected float"):
        load_config(env)
