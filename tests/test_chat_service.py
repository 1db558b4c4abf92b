from pathlib import Path

import pytest
from fake_engine import ScriptedEngine, ScriptedModel

from termllm.app import build_services
from termllm.config import load_config
from termllm.domain import GenParams, Message, Role
from termllm.errors import ModelNotFoundError, UsageError
from termllm.services.chat import FittedPrompt, LoadOptions


def words(n: int, word: str = "w") -> str:
    return " ".join([word] * n)


def fit(
    model: ScriptedModel, messages: list[Message], max_tokens: int | None = None
) -> FittedPrompt:
    services = build_services(load_config(), engine_factory=lambda: ScriptedEngine(model))
    return services.chat.fit(model, messages, GenParams(max_tokens=max_tokens))


def test_a_prompt_that_fits_is_untouched() -> None:
    model = ScriptedModel(answer=[], n_ctx=1000)
    messages = [Message(Role.SYSTEM, "be brief"), Message(Role.USER, words(10))]
    fitted = fit(model, messages)
    assert fitted.messages == tuple(messages) and fitted.warnings == ()


def test_oldest_turns_are_dropped_but_never_the_system_prompt() -> None:
    model = ScriptedModel(answer=[], n_ctx=400)
    history = [Message(Role.SYSTEM, "sys")]
    for turn in range(6):
        history += [Message(Role.USER, words(40, f"q{turn}")), Message(Role.ASSISTANT, words(40))]
    history.append(Message(Role.USER, "last question"))
    fitted = fit(model, history, max_tokens=100)
    assert fitted.messages[0] == history[0]
    assert fitted.messages[-1] == history[-1]
    assert fitted.prompt_tokens <= 300
    assert len(fitted.messages) < len(history)
    assert "oldest messages" in fitted.warnings[0]


def test_a_single_huge_prompt_is_cut_with_a_warning() -> None:
    model = ScriptedModel(answer=[], n_ctx=256)
    fitted = fit(model, [Message(Role.USER, words(5000))])
    assert fitted.prompt_tokens <= 256 - 64
    assert "cut from" in fitted.warnings[-1]


def test_a_system_prompt_that_fills_the_context_is_an_error() -> None:
    model = ScriptedModel(answer=[], n_ctx=128)
    with pytest.raises(UsageError, match="system prompt alone"):
        fit(model, [Message(Role.SYSTEM, words(500)), Message(Role.USER, "hi")])


def test_max_tokens_larger_than_the_context_is_capped() -> None:
    model = ScriptedModel(answer=[], n_ctx=256)
    fitted = fit(model, [Message(Role.USER, "hi")], max_tokens=10_000)
    assert "max tokens cut to 128" in fitted.warnings[0]


def test_model_choice_default_then_last_used_then_the_only_one(
    starter_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = ScriptedEngine(ScriptedModel(answer=[]))
    services = build_services(load_config(), engine_factory=lambda: engine)
    only = services.chat.choose_model(None)
    assert only.path == starter_model
    other = tmp_path / "other.gguf"
    other.write_bytes(starter_model.read_bytes()[:1000])
    services.models.find(str(other))
    with pytest.raises(UsageError, match="several models"):
        services.chat.choose_model(None)
    services.chat.load(services.models.find(str(other)), LoadOptions())
    assert services.chat.choose_model(None).path == other.resolve()
    monkeypatch.setenv("TERMLLM_MODELS_DEFAULT", "smollm2-135m-instruct")
    configured = build_services(load_config(), engine_factory=lambda: engine)
    assert configured.chat.choose_model(None).path == starter_model


def test_no_models_at_all_says_how_to_pull_one(monkeypatch: pytest.MonkeyPatch) -> None:
    services = build_services(
        load_config(), engine_factory=lambda: ScriptedEngine(ScriptedModel([]))
    )
    monkeypatch.setattr(services.models, "list_models", list)
    with pytest.raises(ModelNotFoundError, match="termllm pull"):
        services.chat.choose_model(None)
