"""A conversation's own settings: system prompt, sampling parameters, thinking and context size.

They are saved with the conversation (its `system_prompt` and JSON `params` columns) and merged
over the configured defaults, so a field the row lacks (an older row, an import) or holds in a
form this version cannot use falls back to the config instead of failing the conversation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from termllm.domain import GenParams
from termllm.errors import UsageError
from termllm.setting_fields import (
    CONTEXT_KEY,
    FIELDS_BY_NAME,
    ChoiceField,
    SettingField,
    check_value,
)

if TYPE_CHECKING:
    from termllm.services.chat import ChatService
    from termllm.store import ConversationRecord

_PARAM_NAMES = frozenset(item.name for item in fields(GenParams))


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
        name: _restored(FIELDS_BY_NAME[name], value)
        for name, value in conversation.params.items()
        if name in FIELDS_BY_NAME and check_value(FIELDS_BY_NAME[name], value) is None
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
