"""A thinking model in the app: its reasoning streams in a section of its own above the answer,
folds when the answer starts, opens with a key or a click, and comes back folded with the
conversation; the Thinking settings are saved with the conversation and reach the model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fake_engine import MESSAGE_OVERHEAD, ScriptedEngine, ScriptedModel
from model_dialogs import fill
from rich.cells import cell_len
from template_models import opens_reasoning
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Select
from tui_support import SIZE, notices, send, settle, shown, submit, wait_until

from termllm.app import Services, build_services
from termllm.config import load_config
from termllm.domain import GenParams, Think
from termllm.services.conversation_settings import settings_of
from termllm.store import ConversationRecord
from termllm.tui.app import ChatApp
from termllm.tui.reasoning_lines import ReasoningLines
from termllm.tui.screens.settings import SettingsScreen
from termllm.tui.widgets.answer import AnswerView
from termllm.tui.widgets.messages import ConversationView
from termllm.tui.widgets.prompt import PromptInput
from termllm.tui.widgets.sidebar import ConversationList
from termllm.tui.widgets.status import StatusBar
from termllm.tui.widgets.thinking import ThinkingView, counted

pytestmark = pytest.mark.anyio

REASONING = ["The user ", "greets me. ", "A short ", "friendly ", "reply ", "will do."]
ANSWER = ["Hello", " there", "!"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def thinking_services(
    reasoning: list[str], answer: list[str], delay_s: float = 0.0
) -> tuple[Services, ScriptedModel]:
    model = ScriptedModel(list(answer), reasoning=list(reasoning), delay_s=delay_s)
    return build_services(load_config(), engine_factory=lambda: ScriptedEngine(model)), model


def thinking_app(
    reasoning: list[str], answer: list[str], delay_s: float = 0.0
) -> tuple[ChatApp, ScriptedModel]:
    services, model = thinking_services(reasoning, answer, delay_s)
    return ChatApp(services), model


def sections(app: ChatApp) -> list[ThinkingView]:
    return list(app.query_one(ConversationView).query_children(ThinkingView))


def section(app: ChatApp) -> ThinkingView:
    (found,) = sections(app)
    return found


def drawn(widget: ThinkingView) -> str:
    """The section's lines as drawn, without the spaces they end with."""
    return "\n".join(widget.render_line(y).text.rstrip() for y in range(widget.size.height))


async def start(pilot: Pilot[None], text: str) -> None:
    pilot.app.query_one(PromptInput).insert(text)
    await pilot.press("enter")


async def test_reasoning_streams_in_its_section_and_folds_when_the_answer_starts() -> None:
    reasoning = [f"r{i} " for i in range(40)]
    app, _ = thinking_app(reasoning, ANSWER, delay_s=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await start(pilot, "Hi")
        await wait_until(pilot, lambda: bool(sections(app)) and len(section(app).text) > 10)
        thinking = section(app)
        answer = app.query(AnswerView).last()
        assert thinking.is_streaming and thinking.is_open
        counted = re.fullmatch(r"Thinking… (\d+) tokens · \d+\.\d s ▾", thinking.header)
        assert counted is not None and int(counted[1]) >= 3, thinking.header
        assert "".join(reasoning).startswith(thinking.text) and answer.source == ""
        # It sits above its answer, which it belongs to.
        children = list(app.query_one(ConversationView).children)
        assert children.index(thinking) == children.index(answer) - 1

        await wait_until(pilot, lambda: bool(answer.source))
        assert not thinking.is_streaming and not thinking.is_open
        assert thinking.header.startswith("Thought for ")
        assert thinking.header.endswith(" · 40 tokens ▸")
        await settle(pilot)
        assert thinking.text == "".join(reasoning)
        assert answer.source == "".join(ANSWER)
        assert thinking.outer_size.height == 1, "folded to its header line"
        # The context meter counts the reasoning too: the model's context holds it.
        prompt_tokens = 1 + MESSAGE_OVERHEAD  # "Hi"
        assert app.query_one(StatusBar).info.used_tokens == prompt_tokens + 40 + len(ANSWER)


async def test_the_key_and_a_click_open_and_fold_the_reasoning() -> None:
    app, model = thinking_app(REASONING, ANSWER)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Hi")
        model.reasoning = ["Again ", "some ", "thought."]
        await send(pilot, "And again")
        first, second = sections(app)
        assert not first.is_open and not second.is_open

        # No selection: the last answer's reasoning.
        await pilot.press("alt+t")
        await pilot.pause()
        assert second.is_open and not first.is_open
        assert second.header.endswith("▾") and second.outer_size.height > 1
        assert drawn(second).splitlines()[1:] == ["Again some thought."]
        await pilot.press("alt+t")
        await pilot.pause()
        assert not second.is_open and second.outer_size.height == 1

        # The selected answer's, or the one answering a selected question.
        await pilot.press("alt+up", "alt+up", "alt+up", "alt+up")  # the first question
        await pilot.press("alt+t")
        await pilot.pause()
        assert first.is_open and not second.is_open
        await pilot.press("alt+down", "alt+t")  # its answer
        await pilot.pause()
        assert not first.is_open

        # A click on the header toggles it; a click on the reasoning itself does not.
        await pilot.press("escape")
        await pilot.click(first, offset=(3, 0))
        await pilot.pause()
        assert first.is_open
        await pilot.click(first, offset=(3, 1))
        await pilot.pause()
        assert first.is_open
        await pilot.click(first, offset=(3, 0))
        await pilot.pause()
        assert not first.is_open
        # The copy keys copy the answer only, never its reasoning.
        await pilot.press("alt+up", "ctrl+o")
        await settle(pilot)
        assert app.clipboard == "".join(ANSWER)


async def test_an_answer_without_reasoning_has_no_section() -> None:
    app, _ = thinking_app([], ANSWER)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Hi")
        assert sections(app) == []
        assert shown(app) == [("user", "Hi"), ("assistant", "".join(ANSWER))]
        await pilot.press("alt+t")
        await pilot.pause()
        assert notices(app)[-1] == "no reasoning here to show"
        await pilot.press("alt+up", "alt+t")
        await pilot.pause()
        assert notices(app)[-1] == "the selected message has no reasoning to show"


async def test_running_out_while_thinking_leaves_the_reasoning_open_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERMLLM_GENERATION_MAX_TOKENS", "3")
    app, _ = thinking_app(REASONING, ANSWER)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Hi")
        thinking = section(app)
        assert thinking.is_open and not thinking.is_streaming
        assert thinking.text == "".join(REASONING[:3])
        assert thinking.header.startswith("Thought for ")
        assert any(n.startswith("no answer: the token limit ran out") for n in notices(app))
        assert app.query(AnswerView).last().has_class("ended-length")


async def test_a_blank_reasoning_shows_no_section() -> None:
    # Some models write an empty block when thinking is off: nothing to show, nothing saved.
    app, _ = thinking_app(["\n", " \n"], ANSWER)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Hi")
        assert sections(app) == []
        assert not app.query(AnswerView).last().has_class("thought")


def test_reasoning_without_a_token_count_says_its_words() -> None:
    # An imported answer may carry its reasoning alone.
    assert ThinkingView("Plan: say hi.").header == "Thought · 3 words ▸"
    assert ThinkingView("x", tokens=1).header == "Thought · 1 token ▸"
    assert ThinkingView("x", tokens=2, seconds=75).header == "Thought for 1 min 15 s · 2 tokens ▸"


@pytest.mark.parametrize("width", [2, 5, 12, 40])
def test_reasoning_wrapped_as_it_streams_is_wrapped_as_a_whole(width: int) -> None:
    text = (
        "Okay,  so the user wants\n\n  a long-winded-unbreakable-word 日本語のテキスト and more.\n"
    )
    whole = ReasoningLines()
    whole.set_width(width)
    whole.append(text)
    expected = [whole.line(y) for y in range(whole.line_count)]
    assert all(cell_len(line) <= width for line in expected)
    for size in (1, 2, 3, 7):
        streamed = ReasoningLines()
        streamed.set_width(width)
        for start in range(0, len(text), size):
            streamed.append(text[start : start + size])
        assert [streamed.line(y) for y in range(streamed.line_count)] == expected
    late = ReasoningLines()
    late.append(text)
    late.set_width(width)
    assert [late.line(y) for y in range(late.line_count)] == expected


async def test_a_reopened_conversation_shows_its_saved_reasoning_folded() -> None:
    services, model = thinking_services(REASONING, ANSWER)
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Hi")
        model.reasoning = []
        await send(pilot, "Thanks")
        cid = app.conversation_id
    assert cid is not None
    _, records = services.history.transcript(cid)
    assert [r.reasoning or "" for r in records if r.role == "assistant"] == ["".join(REASONING), ""]

    reopened = ChatApp(services, conversation_id=cid)
    async with reopened.run_test(size=SIZE) as pilot:
        await settle(pilot)
        thinking = section(reopened)
        assert thinking.text == "".join(REASONING)
        assert not thinking.is_open and thinking.header == "Thought · 6 tokens ▸"
        await pilot.press("alt+up", "alt+up", "alt+up", "alt+t")  # the first answer
        await pilot.pause()
        assert thinking.is_open
        assert drawn(thinking).splitlines()[1:] == [
            "The user greets me. A short friendly reply will do."
        ]


async def test_each_alternative_shows_its_own_reasoning() -> None:
    app, model = thinking_app(REASONING, ANSWER)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Hi")
        model.reasoning, model.answer = ["Second ", "thoughts."], ["Hey."]
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert section(app).text == "Second thoughts."
        await pilot.press("alt+left")
        await settle(pilot)
        assert section(app).text == "".join(REASONING)
        assert shown(app)[-1] == ("assistant", "".join(ANSWER))
        model.reasoning, model.answer = [], ["Plain."]
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert sections(app) == []
        await pilot.press("alt+left")
        await settle(pilot)
        assert section(app).text == "Second thoughts."


async def test_reasoning_streams_on_in_the_background_and_shows_on_return() -> None:
    reasoning = [f"t{i} " for i in range(100)]
    answer = [f"a{i} " for i in range(40)]
    app, _ = thinking_app(reasoning, answer, delay_s=0.01)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await start(pilot, "Count")
        await wait_until(pilot, lambda: bool(sections(app)) and bool(section(app).text))
        busy = app.conversation_id
        assert busy is not None
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert sections(app) == []
        sidebar = app.query_one(ConversationList)
        sidebar.focus()
        sidebar.highlighted = sidebar.get_option_index(busy)
        await pilot.press("enter")
        await pilot.pause()
        thinking = section(app)
        assert "".join(reasoning).startswith(thinking.text) and thinking.text
        await app.workers.wait_for_complete()
        await pilot.pause()
        thinking = section(app)
        assert thinking.text == "".join(reasoning)
        assert not thinking.is_open and thinking.header.endswith(" · 100 tokens ▸")
        assert shown(app)[-1] == ("assistant", "".join(answer))


async def test_the_thinking_settings_are_saved_and_reach_the_model() -> None:
    app, model = thinking_app(REASONING, ANSWER)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Hi")
        assert model.params_seen[-1].think is Think.AUTO
        assert model.params_seen[-1].think_budget is None
        await pilot.press("f5")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        choice = screen.query_one("#setting-think", Select)
        assert choice.value == "auto"
        fill(pilot, "#setting-think_budget", "-1")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen, "a negative budget is refused"
        choice.value = "off"
        fill(pilot, "#setting-think_budget", "0")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, SettingsScreen)
        saved = app.services.history.find(app.conversation_id or "")
        assert (saved.params["think"], saved.params["think_budget"]) == ("off", 0)

        await submit(pilot, "Next")
        assert model.params_seen[-1].think is Think.OFF
        assert model.params_seen[-1].think_budget == 0
        await pilot.press("f5")
        await pilot.pause()
        assert app.screen.query_one("#setting-think", Select).value == "off"
        assert app.screen.query_one("#setting-think_budget", Input).value == "0"


def test_saved_thinking_settings_restore_and_bad_ones_fall_back_to_the_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERMLLM_GENERATION_THINK", "low")
    monkeypatch.setenv("TERMLLM_GENERATION_THINK_BUDGET", "64")
    chat = build_services(load_config()).chat

    def restored(params: dict[str, object]) -> GenParams:
        return settings_of(chat, ConversationRecord("c", "t", "m", None, params, 0, 0, 0)).params

    assert (restored({}).think, restored({}).think_budget) == (Think.LOW, 64)
    kept = restored({"think": "off", "think_budget": None})
    assert (kept.think, kept.think_budget) == (Think.OFF, None)
    assert isinstance(kept.think, Think)
    assert restored({"think": "high", "think_budget": 0}).think_budget == 0
    for bad in ({"think": "maximum", "think_budget": -3}, {"think": 1, "think_budget": 2.5}):
        fallen = restored(bad)
        assert (fallen.think, fallen.think_budget) == (Think.LOW, 64)


def snapshot_app() -> ChatApp:
    reasoning = [
        *REASONING,
        " Friendly, ",
        "and brief.\n\n",
        "Say hello ",
        "back, then offer help.",
    ]
    app, _ = thinking_app(reasoning, ANSWER)
    return app


async def ask_and_reopen(pilot: Pilot[None]) -> None:
    """A thinking answer as a reopened conversation shows it: its header has no clock."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    await settle(pilot)
    await send(pilot, "Say hello")
    await app.show_conversation(app.conversation_id)
    await settle(pilot)


def test_the_folded_reasoning(snap_compare: Any) -> None:
    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=ask_and_reopen)


def test_the_open_reasoning(snap_compare: Any) -> None:
    async def open_it(pilot: Pilot[None]) -> None:
        await ask_and_reopen(pilot)
        await pilot.press("alt+t")
        await settle(pilot)

    assert snap_compare(snapshot_app(), terminal_size=SIZE, run_before=open_it)


async def test_the_starter_model_thinks_within_its_budget_and_then_answers(
    starter_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The template opens the reasoning in the generation prompt: all the model writes is
    # reasoning until the budget closes it, then the answer comes.
    monkeypatch.setenv("TERMLLM_MODELS_CHAT_TEMPLATE", str(opens_reasoning(tmp_path)))
    monkeypatch.setenv("TERMLLM_GENERATION_TEMPERATURE", "0")
    monkeypatch.setenv("TERMLLM_GENERATION_SEED", "7")
    monkeypatch.setenv("TERMLLM_GENERATION_THINK_BUDGET", "4")
    monkeypatch.setenv("TERMLLM_GENERATION_MAX_TOKENS", "24")
    services = build_services(load_config())
    app = ChatApp(services)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await send(pilot, "Write a story about a dragon who bakes bread.")
        thinking = section(app)
        assert thinking.text.strip() and not thinking.is_open
        assert thinking.header.startswith("Thought for ")
        answer = app.query(AnswerView).last()
        assert answer.source.strip()
        assert "<think>" not in answer.source and not answer.source.startswith(thinking.text)
        _, records = services.history.transcript(app.conversation_id or "")
        assert (records[-1].content, records[-1].reasoning) == (answer.source, thinking.text)
        # The header ends with the engine's count of reasoning tokens, as the history has it.
        tokens = records[-1].reasoning_tokens or 0
        assert tokens > 0 and thinking.header.endswith(f" · {counted(tokens, 'token')} ▸")
        await pilot.press("alt+t")
        await pilot.pause()
        assert thinking.is_open
        assert not [n for n in app._notifications if n.severity == "error"]
    services.history.close()


async def test_the_filter_searches_reasoning_only_when_its_box_is_ticked() -> None:
    app, _ = thinking_app(["A secret plan to greet."], ["Hello there."])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "Hi")
        box = app.query_one("#filter-reasoning", Checkbox)
        assert not box.display, "shown only while filtering"
        conversations = app.query_one(ConversationList)
        await pilot.press("ctrl+f", *"secret")
        await wait_until(pilot, lambda: app.query_one("#no-matches").display)
        assert box.display
        await pilot.click("#filter-reasoning")
        await wait_until(pilot, lambda: conversations.option_count == 1)
        assert not app.query_one("#no-matches").display
        assert box.value
