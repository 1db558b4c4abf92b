"""HistoryService branching: answering again, editing, flipping alternatives, and what `resume`
(which `ask -c` and the TUI continue from) sees afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from termllm.app import build_services
from termllm.config import load_config
from termllm.domain import Completion, FinishReason, GenParams, Role, Timings, Usage
from termllm.errors import UsageError
from termllm.services.history import HistoryService


@pytest.fixture
def history() -> Iterator[HistoryService]:
    services = build_services(load_config())
    yield services.history
    services.history.close()


def answered(text: str) -> Completion:
    return Completion(text, FinishReason.STOP, Usage(5, 1), Timings(1.0, 1.0, 1.0, 1.0))


def first_exchange(history: HistoryService) -> tuple[str, str]:
    exchange = history.save_question(None, "org/m:Q4_0", "Be brief.", GenParams(), "Q")
    history.save_answer(exchange, answered("A1"), "org/m:Q4_0")
    return exchange.conversation_id, exchange.question_id


def sent(history: HistoryService, cid: str) -> list[str]:
    return [message.content for message in history.resume(cid).messages]


def test_regenerating_answers_the_last_question_again_and_keeps_the_old_answer(
    history: HistoryService,
) -> None:
    cid, question_id = first_exchange(history)
    pending = history.regenerate(cid)
    assert pending.exchange.question_id == question_id
    assert [(m.role, m.content) for m in pending.messages] == [(Role.USER, "Q")]
    assert pending.conversation.system_prompt == "Be brief."
    history.save_answer(pending.exchange, answered("A2"), "org/m:Q4_0")

    assert sent(history, cid) == ["Q", "A2"]
    entries = history.branch(cid)
    assert [(e.message.content, e.index, e.count) for e in entries] == [
        ("Q", 0, 1),
        ("A2", 1, 2),
    ]
    alternatives = history.alternatives(cid, entries[-1].message.id)
    assert [m.content for m in alternatives.messages] == ["A1", "A2"]
    assert (alternatives.index, alternatives.current.content) == (1, "A2")


def test_choosing_an_alternative_is_what_resume_continues(history: HistoryService) -> None:
    cid, _ = first_exchange(history)
    history.save_answer(history.regenerate(cid).exchange, answered("A2"), "m")
    older = history.alternatives(cid, history.branch(cid)[-1].message.id).messages[0]

    history.select_alternative(cid[:6], older.id)
    assert sent(history, cid) == ["Q", "A1"]
    assert history.alternatives(cid, older.id).index == 0
    assert history.transcript(cid)[1][-1].content == "A1"
    # Continuing from the chosen answer keeps going down its branch.
    follow = history.save_question(history.resume(cid), "m", None, GenParams(), "More")
    history.save_answer(follow, answered("B"), "m")
    assert sent(history, cid) == ["Q", "A1", "More", "B"]


def test_an_edited_question_is_a_sibling_and_the_original_keeps_its_answer(
    history: HistoryService,
) -> None:
    cid, question_id = first_exchange(history)
    pending = history.save_edit(cid, question_id, "Q, edited")
    assert [m.content for m in pending.messages] == ["Q, edited"]
    assert sent(history, cid) == ["Q, edited"]
    history.save_answer(pending.exchange, answered("E1"), "m")

    entries = history.branch(cid)
    assert [(e.message.content, e.index, e.count) for e in entries] == [
        ("Q, edited", 1, 2),
        ("E1", 0, 1),
    ]
    history.select_alternative(cid, question_id)
    assert sent(history, cid) == ["Q", "A1"]


def test_an_edit_deeper_in_the_conversation_keeps_what_came_before(
    history: HistoryService,
) -> None:
    cid, _ = first_exchange(history)
    second = history.save_question(history.resume(cid), "m", None, GenParams(), "Q2")
    history.save_answer(second, answered("A2"), "m")
    pending = history.save_edit(cid, second.question_id, "Q2, edited")
    assert [m.content for m in pending.messages] == ["Q", "A1", "Q2, edited"]


def test_nothing_to_regenerate_and_wrong_targets_are_refused(history: HistoryService) -> None:
    conversation = history.start("m", None, GenParams(), "empty")
    with pytest.raises(UsageError, match="no question to answer again"):
        history.regenerate(conversation.id)
    cid, question_id = first_exchange(history)
    answer_id = history.branch(cid)[-1].message.id
    with pytest.raises(ValueError, match="not a question"):
        history.regenerate(cid, answer_id)
    with pytest.raises(ValueError, match="not a question"):
        history.save_edit(cid, answer_id, "x")
    assert history.regenerate(cid, question_id).exchange.question_id == question_id
