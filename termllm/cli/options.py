"""Flag values Typer's types let through, checked before a command does anything with them.

Typer's own min and max pass `nan` and keep a second copy of each range; a flag is checked
against the setting's field instead, so it is refused in the words config.toml and the app use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from termllm.errors import UsageError
from termllm.setting_fields import (
    FLASH_ATTENTION,
    KV_CACHE_TYPE,
    ChoiceField,
    FlashAttention,
    KvCacheType,
    MemoryOptions,
    SettingField,
    check_value,
)

if TYPE_CHECKING:
    from termllm.app import Services
    from termllm.config import ModelSettings

KV_TYPE_HELP = "KV cache type: f16, q8_0 (half the memory) or q4_0 (about a quarter)."
FLASH_ATTN_HELP = "Flash attention: auto (on for a quantized KV cache), on or off."


def check_flag(flag: str, item: SettingField | ChoiceField, value: object) -> None:
    """Refuse a flag's value that `item` does not accept (None: the flag was not given)."""
    if value is None:
        return
    problem = check_value(item, value)
    if problem is not None:
        raise UsageError(f"{flag}: {problem}, got {value!r}")


def check_cid(cid: str | None) -> None:
    """Refuse an empty `--cid`: it would quietly mean another conversation (the latest in
    `ask`, a new one in `chat`)."""
    if cid is not None and not cid.strip():
        raise UsageError("--cid: give a conversation id (or a unique prefix of one)")


def memory_flags(
    kv_type: str | None, flash_attn: str | None
) -> tuple[KvCacheType | None, FlashAttention | None]:
    """`--kv-type` and `--flash-attn`, each checked (any case); None where not given."""
    kv = kv_type.strip().lower() if kv_type is not None else None
    flash = flash_attn.strip().lower() if flash_attn is not None else None
    check_flag("--kv-type", KV_CACHE_TYPE, kv)
    check_flag("--flash-attn", FLASH_ATTENTION, flash)
    return (
        KvCacheType(kv) if kv is not None else None,
        FlashAttention(flash) if flash is not None else None,
    )


def check_memory_flags(
    kv_type: KvCacheType | None, flash_attn: FlashAttention | None, settings: ModelSettings
) -> None:
    """Refuse flags that, with the settings they leave in place, cannot load together: a
    quantized KV cache with flash attention off. Both sources are named."""
    if kv_type is None and flash_attn is None:
        return
    configured = settings.memory
    memory = MemoryOptions(kv_type or configured.kv_type, flash_attn or configured.flash_attention)
    problem = memory.conflict()
    if problem is None:
        return
    flash_source = "--flash-attn" if flash_attn is not None else "models.flash_attention"
    kv_source = "--kv-type" if kv_type is not None else "models.kv_cache_type"
    raise UsageError(
        f"{flash_source} {memory.flash_attention} with {kv_source} {memory.kv_type}: {problem}"
    )


def with_memory_flags(
    services: Services, kv_type: KvCacheType | None, flash_attn: FlashAttention | None
) -> Services:
    """Services whose settings hold the flags, checked with what they leave in place, for
    commands that read the KV cache options from the settings (the app, `info`)."""
    check_memory_flags(kv_type, flash_attn, services.config.settings.models)
    overrides = {}
    if kv_type is not None:
        overrides["models.kv_cache_type"] = kv_type.value
    if flash_attn is not None:
        overrides["models.flash_attention"] = flash_attn.value
    if not overrides:
        return services
    from termllm.app import load_services

    return load_services(overrides=overrides)
