"""A conversation's own settings: system prompt, sampling parameters, thinking and context size.

They are saved with the conversation (its `system_prompt` and JSON `params` columns) and merged
over the configured defaults, so a field the row lacks (an older row, an import) or holds in a
form this version cannot use falls back to the config instead of failing the conversation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from termllm.domain import GenParams, Think
from termllm.errors import UsageError

if TYPE_CHECKING:
    from termllm.services.chat import ChatService
    from termllm.store import ConversationRecord

CONTEXT_KEY = "n_ctx"
_PARAM_NAMES = frozenset(item.name for item in fields(GenParams))


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
    SettingField("seed", "Seed", integer=True, minimum=0, optional=True, empty_means="random"),
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
_BY_NAME = {item.name: item for item in SETTING_FIELDS}

Value = int | float | StrEnum | None


@dataclass(frozen=True)
class ConversationSettings:
    system_prompt: str
    """The prompt sent first; empty: none."""
    params: GenParams
    n_ctx: int | None = None
    """Context size to load the model with; None: the configured size."""

    def values(self) -> dict[str, Value]:
        """Each field of SETTING_FIELDS by name."""
        return {**asdict(self.params), CONTEXT_KEY: self.n_ctx}


def params_json(params: GenParams, n_ctx: int | None) -> dict[str, object]:
    """What the conversation row's `params` column holds."""
    saved: dict[str, object] = dict(asdict(params))
    if n_ctx is not None:
        saved[CONTEXT_KEY] = n_ctx
    return saved


def default_settings(chat: ChatService) -> ConversationSettings:
    return ConversationSettings(chat.default_system_prompt(), chat.default_params())


def settings_of(chat: ChatService, conversation: ConversationRecord | None) -> ConversationSettings:
    """The conversation's saved settings over the configured defaults (None: the defaults)."""
    defaults = default_settings(chat)
    if conversation is None:
        return defaults
    usable: dict[str, Any] = {
        name: _restored(_BY_NAME[name], value)
        for name, value in conversation.params.items()
        if name in _BY_NAME and check_value(_BY_NAME[name], value) is None
    }
    n_ctx = usable.pop(CONTEXT_KEY, None)
    return ConversationSettings(
        system_prompt=(
            defaults.system_prompt
            if conversation.system_prompt is None
            else conversation.system_prompt
        ),
        params=replace(defaults.params, **{k: v for k, v in usable.items() if k in _PARAM_NAMES}),
        n_ctx=n_ctx if isinstance(n_ctx, int) else None,
    )


def _restored(item: SettingField | ChoiceField, value: object) -> object:
    """A checked value as saved in JSON, in its type (a choice is saved as its word)."""
    if isinstance(item, ChoiceField) and isinstance(value, str):
        return item.kind(value)
    return value


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
    if not math.isfinite(value):
        return "must be a finite number"
    if value < item.minimum:
        return f"must be at least {_shown(item.minimum)}"
    if item.maximum is not None and value > item.maximum:
        return f"must be at most {_shown(item.maximum)}"
    return None


def parse_value(item: SettingField | ChoiceField, text: str) -> Value:
    """The value typed (or chosen) for `item`; UsageError says what is wrong with it."""
    stripped = text.strip()
    value: Value
    if isinstance(item, ChoiceField):
        word = stripped.lower()
        if word not in item.choices:
            raise UsageError(f"{item.label}: {check_value(item, word)}, got {stripped!r}")
        return item.kind(word)
    if not stripped:
        value = None
    else:
        try:
            value = int(stripped) if item.integer else float(stripped)
        except ValueError:
            kind = "a whole number" if item.integer else "a number"
            raise UsageError(f"{item.label}: {stripped!r} is not {kind}") from None
    problem = check_value(item, value)
    if problem is not None:
        raise UsageError(f"{item.label}: {problem}")
    return value


def build_settings(system_prompt: str, values: Mapping[str, Value]) -> ConversationSettings:
    """Settings from checked values (see parse_value), one per SETTING_FIELDS name."""
    chosen: dict[str, Any] = {name: values[name] for name in _PARAM_NAMES}
    params = GenParams(**chosen)
    n_ctx = values[CONTEXT_KEY]
    return ConversationSettings(system_prompt, params, None if n_ctx is None else int(n_ctx))


def _shown(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)
