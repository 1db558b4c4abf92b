"""What each setting with a range or a few choices accepts, in one place.

A conversation's settings form, `ask`'s flags, config.toml and the TERMLLM_* variables all check
a value against these fields with `check_value`, so a value is refused with the same words
wherever it is set, and each source only adds where it was set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from termllm.domain import Think

CONTEXT_KEY = "n_ctx"

MAX_SEED = 2**32 - 2
"""llama.cpp takes a 32-bit seed and reads 0xFFFFFFFF as "pick one": a larger seed would wrap
onto another, and that one would not be reproducible."""
MAX_THREADS = 512
"""GGML_MAX_N_THREADS: llama.cpp crashes on more."""


@dataclass(frozen=True)
class SettingField:
    """One numeric setting: its key in `params`, how the form names it, and what it accepts."""

    name: str
    label: str
    integer: bool
    minimum: float
    maximum: float | None = None
    optional: bool = False
    """Whether it may be left empty (None)."""
    empty_means: str = ""
    above_minimum: bool = False
    """Whether the minimum itself is refused too (a timeout of 0 s is no timeout)."""


@dataclass(frozen=True)
class ChoiceField:
    """One setting that takes one of a few words: its key in `params`, how the form names it,
    and the enum of its words (the value is a member)."""

    name: str
    label: str
    kind: type[StrEnum]

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(member.value for member in self.kind)


SETTING_FIELDS: tuple[SettingField | ChoiceField, ...] = (
    SettingField("temperature", "Temperature", integer=False, minimum=0.0),
    SettingField("top_p", "Top p", integer=False, minimum=0.0, maximum=1.0),
    SettingField("top_k", "Top k", integer=True, minimum=0),
    SettingField("min_p", "Min p", integer=False, minimum=0.0, maximum=1.0),
    SettingField("repeat_penalty", "Repeat penalty", integer=False, minimum=0.0),
    SettingField(
        "seed",
        "Seed",
        integer=True,
        minimum=0,
        maximum=MAX_SEED,
        optional=True,
        empty_means="random",
    ),
    SettingField(
        "max_tokens", "Max tokens", integer=True, minimum=1, optional=True, empty_means="no limit"
    ),
    ChoiceField("think", "Thinking", Think),
    # 0 is a budget too: the reasoning is closed at once and the model answers.
    SettingField(
        "think_budget",
        "Thinking budget",
        integer=True,
        minimum=0,
        optional=True,
        empty_means="no limit",
    ),
    SettingField(
        CONTEXT_KEY,
        "Context size",
        integer=True,
        minimum=64,
        optional=True,
        empty_means="the configured size",
    ),
)
"""A conversation's own settings, in the order its settings form shows them."""
FIELDS_BY_NAME = {item.name: item for item in SETTING_FIELDS}

THREADS = SettingField(
    "threads",
    "Threads",
    integer=True,
    minimum=1,
    maximum=MAX_THREADS,
    optional=True,
    empty_means="the physical cores",
)


class KvCacheType(StrEnum):
    """How the KV cache stores K and V (both alike): llama.cpp's f16, or quantized to about 8 or
    4.5 bits an element, which halves or quarters its memory for a small loss of accuracy."""

    F16 = "f16"
    Q8_0 = "q8_0"
    Q4_0 = "q4_0"


class FlashAttention(StrEnum):
    AUTO = "auto"
    """On for a quantized KV cache, which needs it; off otherwise, as llama-cpp-python loads."""
    ON = "on"
    OFF = "off"


KV_CACHE_TYPE = ChoiceField("kv_cache_type", "KV cache type", KvCacheType)
FLASH_ATTENTION = ChoiceField("flash_attention", "Flash attention", FlashAttention)


@dataclass(frozen=True)
class MemoryOptions:
    """The settings that change what a loaded model's KV cache and attention take."""

    kv_type: KvCacheType = KvCacheType.F16
    flash_attention: FlashAttention = FlashAttention.AUTO

    @property
    def flash(self) -> bool:
        """Whether attention runs as flash attention."""
        if self.flash_attention is FlashAttention.AUTO:
            return self.kv_type is not KvCacheType.F16
        return self.flash_attention is FlashAttention.ON

    def conflict(self) -> str | None:
        """Why these cannot load together, or None."""
        if self.kv_type is not KvCacheType.F16 and self.flash_attention is FlashAttention.OFF:
            # llama.cpp reads a quantized V cache only inside its flash-attention kernel.
            return f"a {self.kv_type} KV cache needs flash attention (on or auto)"
        return None


def check_value(item: SettingField | ChoiceField, value: object) -> str | None:
    """Why `value` does not fit `item`, or None when it does."""
    if isinstance(item, ChoiceField):
        if isinstance(value, str) and value in item.choices:
            return None
        return f"expected one of {', '.join(item.choices)}"
    if value is None:
        return None if item.optional else "required"
    # bool is an int to Python, never a setting.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "not a number"
    if item.integer and not isinstance(value, int):
        return "must be a whole number"
    # An int is always finite (and one too large for a float cannot be asked).
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if item.above_minimum and value <= item.minimum:
        return f"must be above {shown(item.minimum)}"
    if value < item.minimum:
        return f"must be at least {shown(item.minimum)}"
    if item.maximum is not None and value > item.maximum:
        return f"must be at most {shown(item.maximum)}"
    return None


def shown(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)
