"""The one turn both front ends run (TurnService): what it saves, in which order, what it tells
its listener, and what a failure at each step leaves in the history. A scripted engine injects
the faults; the starter model shows that the state of a cancelled answer is kept."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fake_engine import ScriptedEngine, ScriptedModel

from termllm.app import Services, build_services
from termllm.config import load_config
from termllm.domain import GenParams
from termllm.engine.base import LoadedModel, LoadReport, LoadRequest
from termllm.errors import ModelLoadError, ModelNotFoundError
from termllm.services.conversation_settings import ConversationSettings
from termllm.services.turn import (
    AnswerAgain,
    EditedQuestion,
    NewQuestion,
    TurnListener,
    TurnOptions,
    TurnResult,
)

STARTER = "SmolLM2-135M-Instruct"


@dataclass
class Recorder(TurnListener):
    """Every event in order, and what the history held when the model began to load."""

    services: Services
    events: list[tuple[str, str]] = field(default_factory=list)
    saved_before_load: list[tuple[str, str]] = field(default_factory=list)

    def saved(self, conversation_id: str) -> None:
        self.events.append(("saved", conversation_id))

    def loading(self, model_ref: str) -> None:
        self.events.append(("loading", model_ref))
        conversation_id = next(value for kind, value in self.events if kind == "saved")
        _, records = self.services.history.transcript(conversation_id)
        self.saved_before_load = [(r.role, r.content) for r in records]

    def loaded(self, model_ref: str, report: LoadReport) -> None:
        self.events.append(("loaded", model_ref))

    def warning(self, message: str) -> None:
        self.events.append(("warning", message))

    def text(self, piece: str) -> None:
        self.events.append(("text", piece))

    def ended(self) -> None:
        self.events.append(("ended", ""))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


class FailingEngine:
    def load(self, request: LoadRequest) -> LoadedModel:
        raise ModelLoadError(f"cannot load {request.model_path.name}: scripted failure")


class SwitchableEngine:
    """Fails to load until `working` is set, as when the user fixes a model file."""

    def __init__(self, model: ScriptedModel) -> None:
        self.model = model
        self.working = False

    def load(self, request: LoadRequest) -> LoadedModel:
        if not self.working:
            raise ModelLoadError("cannot load model.gguf: scripted failure")
        return self.model


def scripted(answer: list[str], n_ctx: int = 4096) -> tuple[Services, ScriptedModel]:
    model = ScriptedModel(answer, n_ctx=n_ctx)
    return build_services(load_config(), engine_factory=lambda: ScriptedEngine(model)), model


def run(
    services: Services,
    turn: NewQuestion | AnswerAgain | EditedQuestion,
    options: TurnOptions | None = None,
    listener: TurnListener | None = None,
    cancel: threading.Event | None = None,
) -> TurnResult:
    return services.turns.run(
        turn, options or TurnOptions(), listener or TurnListener(), cancel or threading.Event()
    )


def rows(services: Services, conversation_id: str | None) -> list[tuple[str, str, str | None]]:
    assert conversation_id is not None
    _, records = services.history.transcript(conversation_id)
    return [(r.role, r.content, r.finish_reason) for r in records]


def test_the_question_is_saved_before_the_model_loads_and_events_come_in_order(
    starter_model: Path,
) -> None:
    services, _ = scripted(["Hello", " there."])
    recorder = Recorder(services)
    result = run(services, NewQuestion("Hi"), listener=recorder)
    assert recorder.kinds() == ["saved", "loading", "loaded", "text", "text", "ended"]
    assert recorder.saved_before_load == [("user", "Hi")]
    assert rows(services, result.conversation_id) == [
        ("user", "Hi", None),
        ("assistant", "Hello there.", "stop"),
    ]
    assert result.answer_id is not None
    assert result.completion.timings.load_ms > 0  # this turn loaded the model

    again = Recorder(services)
    second = run(services, NewQuestion("More", result.conversation_id), listener=again)
    assert "loading" not in again.kinds(), "the loaded model is reused"
    assert second.completion.timings.load_ms == 0
    assert len(rows(services, result.conversation_id)) == 4


def test_a_model_that_fails_to_load_leaves_the_question_and_the_reason(
    starter_model: Path,
) -> None:
    model = ScriptedModel(["Now", " it", " works."])
    engine = SwitchableEngine(model)
    services = build_services(load_config(), engine_factory=lambda: engine)
    recorder = Recorder(services)
    with pytest.raises(ModelLoadError, match="scripted failure"):
        run(services, NewQuestion("my question\n\npiped text"), listener=recorder)
    (conversation_id,) = [value for kind, value in recorder.events if kind == "saved"]
    assert rows(services, conversation_id) == [
        ("user", "my question\n\npiped text", None),
        ("assistant", "", "error"),
    ]
    failed = services.history.transcript(conversation_id)[1][-1]
    assert failed.error == "cannot load model.gguf: scripted failure"

    # Later, with a model that loads, the same question is answered again.
    engine.working = True
    result = run(services, AnswerAgain(conversation_id))
    assert rows(services, conversation_id)[-1] == ("assistant", "Now it works.", "stop")
    assert model.seen[-1][-1].content == "my question\n\npiped text"
    assert result.conversation_id == conversation_id


def test_an_unknown_model_still_keeps_the_question(starter_model: Path) -> None:
    services, _ = scripted(["ok"])
    recorder = Recorder(services)
    with pytest.raises(ModelNotFoundError):
        run(services, NewQuestion("hello"), TurnOptions(model_ref="no-such-model"), recorder)
    (conversation_id,) = [value for kind, value in recorder.events if kind == "saved"]
    assert rows(services, conversation_id) == [("user", "hello", None), ("assistant", "", "error")]
    assert services.history.find(conversation_id).model == "no-such-model"


def test_an_unknown_conversation_saves_nothing(starter_model: Path) -> None:
    services, _ = scripted(["ok"])
    with pytest.raises(Exception, match="no conversation"):
        run(services, NewQuestion("hello", "doesnotexist"))
    assert services.history.recent(None) == []


def test_a_listener_that_cannot_take_the_answer_stops_it_and_the_answer_is_kept(
    starter_model: Path,
) -> None:
    services, _ = scripted(["one", " two", " three", " four"])

    class ClosedPipe(Recorder):
        def text(self, piece: str) -> None:
            super().text(piece)
            if len([kind for kind in self.kinds() if kind == "text"]) == 2:
                raise BrokenPipeError

    recorder = ClosedPipe(services)
    with pytest.raises(BrokenPipeError):
        run(services, NewQuestion("count"), listener=recorder)
    conversation_id = recorder.events[0][1]
    role, content, finish = rows(services, conversation_id)[-1]
    assert (role, finish) == ("assistant", "cancelled")
    assert content.startswith("one two")
    assert "ended" not in recorder.kinds()


def test_every_warning_reaches_the_listener(starter_model: Path) -> None:
    services, _ = scripted(["ok"], n_ctx=64)
    recorder = Recorder(services)
    long_text = " ".join(f"word{i}" for i in range(200))
    run(services, NewQuestion(long_text), listener=recorder)
    warnings = [value for kind, value in recorder.events if kind == "warning"]
    assert any(warning.startswith("the prompt was cut from") for warning in warnings)


def test_no_save_writes_nothing_and_overrides_apply_over_the_conversation(
    starter_model: Path,
) -> None:
    services, model = scripted(["ok"])
    started = run(services, NewQuestion("first"))
    conversation_id = started.conversation_id
    assert conversation_id is not None
    services.history.save_settings(
        conversation_id, ConversationSettings("Be terse.", GenParams(top_k=7, max_tokens=9))
    )
    recorder = Recorder(services)
    options = TurnOptions(params={"max_tokens": 3}, save=False)
    result = run(services, NewQuestion("second", conversation_id), options, recorder)
    assert result.conversation_id is None and result.answer_id is None
    assert "saved" not in recorder.kinds()
    assert len(rows(services, conversation_id)) == 2
    # The conversation's own settings, with this turn's max_tokens over them.
    assert (model.params_seen[-1].top_k, model.params_seen[-1].max_tokens) == (7, 3)
    assert [m.content for m in model.seen[-1]] == ["Be terse.", "first", "ok", "second"]

    run(services, NewQuestion("third", conversation_id), TurnOptions(system_prompt=""))
    assert [m.content for m in model.seen[-1]][:1] == ["first"], "an empty system prompt: none"


def test_a_new_conversation_starts_with_the_settings_chosen_for_it(starter_model: Path) -> None:
    services, model = scripted(["ok"])
    chosen = ConversationSettings("You are a pirate.", GenParams(temperature=0.1), n_ctx=512)
    result = run(services, NewQuestion("ahoy"), TurnOptions(new_settings=chosen))
    assert model.params_seen[-1].temperature == 0.1
    conversation = services.history.find(result.conversation_id or "")
    assert conversation.system_prompt == "You are a pirate."
    assert conversation.params["n_ctx"] == 512


def test_an_edited_question_is_saved_as_a_sibling_and_answered(starter_model: Path) -> None:
    services, model = scripted(["ok"])
    first = run(services, NewQuestion("What is a cat?"))
    conversation_id = first.conversation_id or ""
    question = services.history.transcript(conversation_id)[1][0]
    run(services, EditedQuestion(conversation_id, question.id, "What is a dog?"))
    assert [m.content for m in model.seen[-1]] == ["What is a dog?"]
    assert rows(services, conversation_id) == [
        ("user", "What is a dog?", None),
        ("assistant", "ok", "stop"),
    ]
    assert len(services.history.alternatives(conversation_id, question.id).messages) == 2


def test_a_cancelled_answer_keeps_the_model_state(starter_model: Path) -> None:
    services = build_services(
        load_config(
            {
                **os.environ,
                "TERMLLM_GENERATION_TEMPERATURE": "0",
                "TERMLLM_CACHE_DISK_MB": "0",
                "TERMLLM_MODELS_CONTEXT_SIZE": "1024",
            }
        )
    )
    cancel = threading.Event()

    class CancelAfterThree(TurnListener):
        pieces = 0

        def text(self, piece: str) -> None:
            self.pieces += 1
            if self.pieces == 3:
                cancel.set()

    result = run(
        services,
        # Long enough that the kept state covers well over MIN_GAIN_TOKENS more than the other
        # conversation, which shares only the template's opening with it.
        NewQuestion(
            "Write a long story about a dragon who learns to cook, with a wise old teacher,"
            " a stubborn apprentice and a village that needs feeding before winter comes."
        ),
        TurnOptions(model_ref=STARTER),
        CancelAfterThree(),
        cancel,
    )
    assert result.completion.finish_reason.value == "cancelled"
    # Another conversation takes the model's cache; coming back starts from the kept state.
    run(services, NewQuestion("Name three fruits."), TurnOptions(model_ref=STARTER))
    follow_up = run(
        services,
        NewQuestion("Go on.", result.conversation_id),
        TurnOptions(model_ref=STARTER, params={"max_tokens": 4}),
    )
    assert follow_up.completion.timings.cached_tokens >= result.completion.usage.prompt_tokens
