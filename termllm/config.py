"""Settings: typed defaults, overridden by config.toml, then TERMLLM_* variables, then CLI flags.

Nothing here runs at import time; `load_settings` is called by the app factory.
"""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import platformdirs

from termllm.errors import ConfigError
from termllm.safe_text import one_line
from termllm.server_settings import (
    SERVERS,
    ServerSettings,
    describe_servers,
    read_servers,
    servers_from_env,
)
from termllm.setting_fields import (
    CONTEXT_KEY,
    FIELDS_BY_NAME,
    FLASH_ATTENTION,
    KV_CACHE_TYPE,
    THREADS,
    ChoiceField,
    FlashAttention,
    KvCacheType,
    MemoryOptions,
    SettingField,
    check_value,
)

APP_NAME = "termllm"
ENV_PREFIX = "TERMLLM_"
DEFAULT_HF_ENDPOINT = "https://huggingface.co"


def doc(text: str) -> dict[str, str]:
    """Field metadata carrying the one-line description shown by `termllm config show`."""
    return {"doc": text}


@dataclass(frozen=True)
class ModelSettings:
    default: str = field(default="", metadata=doc("Model reference used when none is given."))
    default_quant: str = field(
        default="Q4_K_M", metadata=doc("Quantization picked when a reference names only a repo.")
    )
    context_size: int = field(
        default=4096,
        metadata=doc("Context length (64 or more) used unless the model's trained one is smaller."),
    )
    gpu_layers: str = field(
        default="auto", metadata=doc('Layers to offload to the GPU: "auto" (fit free memory) or N.')
    )
    threads: int = field(
        default=0, metadata=doc("CPU threads (1 to 512); 0 means the physical cores.")
    )
    chat_template: str = field(
        default="",
        metadata=doc("Chat template: empty for the model's own, a format name or a file."),
    )
    kv_cache_type: str = field(
        default="f16",
        metadata=doc("KV cache type: f16, q8_0 (half the memory) or q4_0 (about a quarter)."),
    )
    flash_attention: str = field(
        default="auto",
        metadata=doc(
            "Flash attention: auto (on for a quantized KV cache, which needs it), on or off."
        ),
    )

    @property
    def memory(self) -> MemoryOptions:
        """kv_cache_type and flash_attention as loading and the estimates take them."""
        return MemoryOptions(
            KvCacheType(self.kv_cache_type.strip().lower()),
            FlashAttention(self.flash_attention.strip().lower()),
        )


@dataclass(frozen=True)
class GenerationSettings:
    temperature: float = field(default=0.7, metadata=doc("Sampling temperature; 0 is greedy."))
    top_p: float = field(
        default=0.95, metadata=doc("Nucleus sampling: keep this probability mass (0 to 1).")
    )
    top_k: int = field(default=40, metadata=doc("Sample among this many likeliest tokens."))
    min_p: float = field(
        default=0.05, metadata=doc("Drop tokens below this share of the top one (0 to 1).")
    )
    repeat_penalty: float = field(
        default=1.1, metadata=doc("Penalty for repeating tokens; 1 is off.")
    )
    max_tokens: int = field(
        default=0, metadata=doc("Longest answer in tokens; 0 means until the context is full.")
    )
    seed: int = field(
        default=-1, metadata=doc("Random seed (0 to 4294967294); -1 picks a new one each time.")
    )
    system: str = field(default="", metadata=doc("System prompt used when none is given."))
    think: str = field(
        default="auto",
        metadata=doc(
            "Thinking models: auto (the model's own default), on, off, low, medium, high."
        ),
    )
    think_budget: int = field(
        default=-1,
        metadata=doc("Close a thinking model's reasoning after this many tokens; -1: no limit."),
    )
    hide_thinking: bool = field(
        default=False, metadata=doc("Hide the reasoning `ask` shows on stderr (it is still saved).")
    )


@dataclass(frozen=True)
class HistorySettings:
    save: bool = field(
        default=True, metadata=doc("Save every `ask` as a conversation (--no-save skips one).")
    )


@dataclass(frozen=True)
class CacheSettings:
    ram_mb: int = field(
        default=512,
        metadata=doc(
            "Model state of recent conversations and long prompts in memory (MB; 0 is off)."
        ),
    )
    disk_mb: int = field(
        default=4096,
        metadata=doc(
            "Model state of conversations and long prompts on disk, so continuing or asking"
            " again about a piped file is instant (MB; 0 is off)."
        ),
    )


@dataclass(frozen=True)
class HubSettings:
    endpoint: str = field(
        default="", metadata=doc("Hub URL; empty means HF_ENDPOINT, else huggingface.co.")
    )
    cache_dir: str = field(
        default="", metadata=doc("Model cache; empty means HF_HUB_CACHE, else HF_HOME/hub.")
    )
    offline: bool = field(
        default=False, metadata=doc("Never reach the Hub (HF_HUB_OFFLINE=1 also sets this).")
    )
    timeout_s: float = field(
        default=10.0,
        metadata=doc("Seconds (at most 3600) to wait for the Hub's answer, and each 16 KiB of it."),
    )


@dataclass(frozen=True)
class TuiSettings:
    theme: str = field(
        default="termllm-dark",
        metadata=doc("Theme used until one is picked in the app (the pick is remembered)."),
    )
    keymap: str = field(
        default="", metadata=doc('Key overrides as "id=key,id=key", e.g. "help=f12".')
    )


@dataclass(frozen=True)
class Settings:
    models: ModelSettings = field(default_factory=ModelSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    history: HistorySettings = field(default_factory=HistorySettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    hub: HubSettings = field(default_factory=HubSettings)
    tui: TuiSettings = field(default_factory=TuiSettings)
    servers: tuple[ServerSettings, ...] = ()
    """The `[servers.NAME]` tables, in the order they were read."""


@dataclass(frozen=True)
class Paths:
    """Where termllm keeps its files; TERMLLM_HOME puts all of them under one folder."""

    config_file: Path
    data_dir: Path
    state_dir: Path
    log_dir: Path
    cache_dir: Path
    hub_cache: Path

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def history_db(self) -> Path:
        return self.data_dir / "history.db"

    @property
    def kv_state_dir(self) -> Path:
        """Saved model state of conversations: a cache, safe to delete."""
        return self.cache_dir / "kv"

    @property
    def app_log_file(self) -> Path:
        """termllm's own log lines (a discarded cache file, for instance)."""
        return self.log_dir / "termllm.log"

    @property
    def native_log_file(self) -> Path:
        """llama.cpp's own log lines go here, never to the terminal."""
        return self.log_dir / "llama.log"


@dataclass(frozen=True)
class Config:
    """The effective settings and the paths they imply."""

    settings: Settings
    paths: Paths

    @property
    def hub_endpoint(self) -> str:
        return self.settings.hub.endpoint.rstrip("/")


def resolve_paths(settings: Settings, env: Mapping[str, str]) -> Paths:
    home = env.get("TERMLLM_HOME")
    if home:
        root = Path(home).expanduser()
        config_dir, data_dir = root / "config", root / "data"
        state_dir, log_dir, cache_dir = root / "state", root / "logs", root / "cache"
    else:
        dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
        config_dir, data_dir = Path(dirs.user_config_dir), Path(dirs.user_data_dir)
        state_dir, log_dir = Path(dirs.user_state_dir), Path(dirs.user_log_dir)
        cache_dir = Path(dirs.user_cache_dir)
    return Paths(
        config_file=config_dir / "config.toml",
        data_dir=data_dir,
        state_dir=state_dir,
        log_dir=log_dir,
        cache_dir=cache_dir,
        hub_cache=_hub_cache(settings, env),
    )


def _hub_cache(settings: Settings, env: Mapping[str, str]) -> Path:
    # The same precedence huggingface_hub uses, so models pulled by `hf` are found and ours are
    # visible to it.
    if settings.hub.cache_dir:
        return Path(settings.hub.cache_dir).expanduser()
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    xdg_cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg_cache).expanduser() / "huggingface" / "hub"


def config_file_path(env: Mapping[str, str]) -> Path:
    return resolve_paths(Settings(), env).config_file


def load_config(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """Read config.toml, then TERMLLM_* and HF_* variables, then `overrides` ("section.key")."""
    env = os.environ if env is None else env
    settings = Settings()
    config_file = config_file_path(env)
    settings = _apply_file(settings, config_file)
    settings = _apply_env(settings, env)
    for dotted, value in (overrides or {}).items():
        section, key = dotted.split(".", 1)
        _check_range(value, section, key, dotted)
        settings = _set(settings, section, key, value)
    _check_memory(settings.models, env, config_file)
    return Config(settings=settings, paths=resolve_paths(settings, env))


def _check_memory(models: ModelSettings, env: Mapping[str, str], config_file: Path) -> None:
    """Refuse a KV cache type and a flash attention setting that cannot load together, naming
    where each was set (the defaults always can)."""
    memory = models.memory
    problem = memory.conflict()
    if problem is None:
        return

    def origin(key: str) -> str:
        name = f"{ENV_PREFIX}MODELS_{key}".upper()
        return name if name in env else str(config_file)

    flash_origin, kv_origin = origin("flash_attention"), origin("kv_cache_type")
    also = f" ({kv_origin})" if kv_origin != flash_origin else ""
    raise ConfigError(
        f"{flash_origin}: models.flash_attention is {memory.flash_attention},"
        f" but models.kv_cache_type is {memory.kv_type}{also}: {problem}"
    )


def _apply_file(settings: Settings, config_file: Path) -> Settings:
    try:
        text = config_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return settings
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {config_file}: {err}") from err
    try:
        data = tomllib.loads(text)
    # tomllib raises ValueError for an integer too long to convert (over 4300 digits).
    except (tomllib.TOMLDecodeError, ValueError) as err:
        raise ConfigError(f"{config_file}: invalid TOML: {one_line(str(err), 200)}") from err
    for section_name, section in data.items():
        if section_name == SERVERS:
            if not isinstance(section, dict):
                line = _line_of(text, section_name, section=None)
                raise ConfigError(
                    f"{config_file}:{line}: 'servers' holds a [servers.NAME] table per server"
                )
            settings = replace(settings, servers=read_servers(section, text, config_file))
            continue
        if section_name not in _sections():
            line = _line_of(text, section_name, section=None)
            raise ConfigError(
                f"{config_file}:{line}: unknown section [{section_name}]"
                f" (known: {', '.join([*_sections(), SERVERS])})"
            )
        if not isinstance(section, dict):
            line = _line_of(text, section_name, section=None)
            raise ConfigError(f"{config_file}:{line}: '{section_name}' must be a [section]")
        for key, value in section.items():
            line = _line_of(text, key, section=section_name)
            where = f"{config_file}:{line}: {section_name}.{key}"
            if key not in _keys(section_name):
                known = ", ".join(_keys(section_name))
                raise ConfigError(f"{where}: unknown key (known in [{section_name}]: {known})")
            settings = _set(settings, section_name, key, _coerce(value, section_name, key, where))
    return settings


def _apply_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    for section_name in _sections():
        for key in _keys(section_name):
            name = f"{ENV_PREFIX}{section_name}_{key}".upper()
            if name in env:
                value = _coerce(env[name], section_name, key, name, from_env=True)
                settings = _set(settings, section_name, key, value)
    settings = replace(settings, servers=servers_from_env(settings.servers, env))
    if not settings.hub.endpoint:
        endpoint = env.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT
        settings = _set(settings, "hub", "endpoint", endpoint)
    if _truthy(env.get("HF_HUB_OFFLINE", "")):
        settings = _set(settings, "hub", "offline", True)
    return settings


def _sections() -> list[str]:
    """The flat [section]s; `servers` holds a table per server instead (server_settings)."""
    return [f.name for f in fields(Settings) if f.name != SERVERS]


def _section_type(section: str) -> type[Any]:
    hints = typing.get_type_hints(Settings)
    section_type: type[Any] = hints[section]
    return section_type


def _keys(section: str) -> list[str]:
    return [f.name for f in fields(_section_type(section))]


def _set(settings: Settings, section: str, key: str, value: Any) -> Settings:
    current = getattr(settings, section)
    return replace(settings, **{section: replace(current, **{key: value})})


def _truthy(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


def _coerce(value: Any, section: str, key: str, where: str, *, from_env: bool = False) -> Any:
    """Check a value from TOML or the environment against the field's type."""
    expected = typing.get_type_hints(_section_type(section))[key]
    if isinstance(expected, types.UnionType):
        expected = next(arg for arg in typing.get_args(expected) if arg is not type(None))
    try:
        if expected is bool:
            if from_env:
                if value.strip().lower() not in {
                    "0",
                    "1",
                    "true",
                    "false",
                    "yes",
                    "no",
                    "on",
                    "off",
                }:
                    raise ValueError
                return _truthy(value)
            if isinstance(value, bool):
                return value
        elif expected is int:
            if from_env or (isinstance(value, int) and not isinstance(value, bool)):
                number = int(value)
                _check_range(number, section, key, where)
                return number
        elif expected is float:
            if from_env or (isinstance(value, int | float) and not isinstance(value, bool)):
                real = float(value)
                _check_range(real, section, key, where)
                return real
        elif expected is str and isinstance(value, str):
            _check_range(value.strip().lower(), section, key, where)
            return value
    except ValueError:
        pass
    raise ConfigError(f"{where}: expected {expected.__name__}, got {_quoted(value)}")


@dataclass(frozen=True)
class _Range:
    """What a key accepts: a setting field, and the number that says in config.toml what the
    field says by being left empty (max_tokens = 0: no limit), if there is one."""

    item: SettingField | ChoiceField
    empty: int | None = None

    def empty_hint(self, value: object) -> str:
        """For a value under the field's minimum, where the empty number is too: how to say
        empty, " (or 0 for no limit)"; else nothing."""
        item = self.item
        if (
            self.empty is None
            or not isinstance(item, SettingField)
            or not isinstance(value, int | float)
            or value >= item.minimum
        ):
            return ""
        return f" (or {self.empty} for {item.empty_means})"


def _same_as_conversations(*names: str) -> dict[str, _Range]:
    return {f"generation.{name}": _Range(FIELDS_BY_NAME[name]) for name in names}


# Every key with a range, by "section.key". The generation keys and the context size take the
# ranges of a conversation's own settings: a value means the same in config.toml, in a flag and
# in the app's settings form, and is refused there in the same words.
_RANGES: dict[str, _Range] = {
    "models.context_size": _Range(FIELDS_BY_NAME[CONTEXT_KEY]),
    "models.threads": _Range(THREADS, empty=0),
    "models.kv_cache_type": _Range(KV_CACHE_TYPE),
    "models.flash_attention": _Range(FLASH_ATTENTION),
    **_same_as_conversations("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "think"),
    "generation.max_tokens": _Range(FIELDS_BY_NAME["max_tokens"], empty=0),
    "generation.seed": _Range(FIELDS_BY_NAME["seed"], empty=-1),
    "generation.think_budget": _Range(FIELDS_BY_NAME["think_budget"], empty=-1),
    "cache.ram_mb": _Range(SettingField("ram_mb", "RAM cache", integer=True, minimum=0)),
    "cache.disk_mb": _Range(SettingField("disk_mb", "Disk cache", integer=True, minimum=0)),
    # A socket timeout must be a positive, finite number the OS can hold (inf overflows it); an
    # hour per read is already far past any Hub that is merely slow.
    "hub.timeout_s": _Range(
        SettingField(
            "timeout_s", "Hub timeout", integer=False, minimum=0, maximum=3600, above_minimum=True
        )
    ),
}


def _check_range(value: object, section: str, key: str, where: str) -> None:
    """Refuse `value`, as read, when its key's range does not hold it."""
    allowed = _RANGES.get(f"{section}.{key}")
    if allowed is None or (allowed.empty is not None and value == allowed.empty):
        return
    problem = check_value(allowed.item, value)
    if problem is not None:
        raise ConfigError(f"{where}: {problem}{allowed.empty_hint(value)}, got {_quoted(value)}")


_QUOTED_CHARS = 60


def _quoted(value: Any) -> str:
    # Whatever the file or the variable holds, a megabyte of it included, cut to a short line;
    # text is quoted (got 'soon'), a number shown as it is (got 2.0).
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4300 digits has no repr
        text = "a number too long to show"
    return one_line(text, _QUOTED_CHARS)


def _line_of(text: str, key: str, section: str | None) -> int:
    """The 1-based line where `key` is set (within `section`), for error messages; 1 if unknown."""
    current: str | None = None
    key_pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(1)
            if section is None and current == key:
                return number
            continue
        if (section is None or current == section) and key_pattern.match(line):
            return number
    return 1


def describe(settings: Settings) -> list[tuple[str, Any, str]]:
    """Every setting as (dotted name, effective value, one-line doc), for `config show`."""
    rows: list[tuple[str, Any, str]] = []
    for section in fields(Settings):
        if section.name == SERVERS:
            continue
        value = getattr(settings, section.name)
        assert is_dataclass(value)
        for item in fields(value):
            rows.append(
                (f"{section.name}.{item.name}", getattr(value, item.name), item.metadata["doc"])
            )
    return rows + describe_servers(settings.servers)
