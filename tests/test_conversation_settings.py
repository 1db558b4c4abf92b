"""A conversation's settings: reading typed values, and merging a saved row over the config."""

from __future__ import annotations

import pytest

from termllm.app import build_services
from termllm.config import load_config
from termllm.domain import GenParams
from termllm.errors import UsageError
from termllm.services.conversation_settings import (
    ConversationSettings,
    build_settings,
    parse_value,
    settings_of,
)
from termllm.setting_fields import SETTING_FIELDS
from termllm.store import ConversationRecord

FIELDS = {item.name: item for item in SETTING_FIELDS}


def record(system_prompt: str | None, params: dict[str, object]) -> ConversationRecord:
    return ConversationRecord("c1", "t", "m", system_prompt, params, 0.0, 0.0, 0)


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("temperature", " 0 ", 0.0),
        ("top_p", "1", 1.0),
        ("top_k", "0", 0),
        ("seed", "", None),
        ("max_tokens", "12", 12),
        ("n_ctx", "", None),
    ],
)
def test_typed_values_are_read(name: str, text: str, value: object) -> None:
    assert parse_value(FIELDS[name], text) == value


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("temperature", "-0.1", "Temperature: must be at least 0"),
        ("top_p", "1.5", "Top p: must be at most 1"),
        ("top_k", "2.5", "Top k: '2.5' is not a whole number"),
        ("temperature", "warm", "Temperature: 'warm' is not a number"),
        ("temperature", "nan", "Temperature: must be a finite number"),
        ("temperature", "", "Temperature: required"),
        ("max_tokens", "0", "Max tokens: must be at least 1"),
        ("n_ctx", "32", "Context size: must be at least 64"),
    ],
)
def test_wrong_values_say_why(name: str, text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_value(FIELDS[name], text)
    assert caught.value.message == message


def test_saved_settings_win_and_unusable_ones_fall_back_to_the_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERMLLM_GENERATION_SYSTEM", "Default prompt.")
    monkeypatch.setenv("TERMLLM_GENERATION_TOP_K", "33")
    chat = build_services(load_config()).chat
    saved = record(
        None,
        {"temperature": 0.0, "top_k": "many", "top_p": 7, "seed": 5, "n_ctx": 2048, "junk": 1},
    )
    settings = settings_of(chat, saved)
    assert settings.system_prompt == "Default prompt."
    assert settings.params == GenParams(temperature=0.0, top_k=33, seed=5)
    assert settings.n_ctx == 2048
    assert settings_of(chat, record("", {})).system_prompt == "", "empty means none"
    assert settings_of(chat, None) == ConversationSettings("Default prompt.", GenParams(top_k=33))


def test_settings_build_from_every_field() -> None:
    values = ConversationSettings("x", GenParams(seed=1), 512).values()
    assert build_settings("x", values) == ConversationSettings("x", GenParams(seed=1), 512)
