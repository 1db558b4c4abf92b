"""The prompt's input history on its own: order, the draft, bounds and duplicates."""

from __future__ import annotations

from termllm.tui.prompt_history import PromptHistory


def test_up_and_down_walk_back_to_the_draft() -> None:
    history = PromptHistory()
    history.seed(["older", "oldest"])
    history.add("newest")
    assert history.older("my draft") == "newest"
    assert history.older("edited newest") == "older"
    assert history.older("x") == "oldest"
    assert history.older("x") is None
    assert history.newer() == "older"
    assert history.newer() == "newest"
    assert history.newer() == "my draft"
    assert history.newer() is None
    assert history.entries == ["newest", "older", "oldest"]


def test_an_empty_history_recalls_nothing() -> None:
    history = PromptHistory()
    assert history.older("draft") is None
    assert history.newer() is None


def test_sending_again_moves_a_prompt_to_the_front_and_the_size_is_bounded() -> None:
    history = PromptHistory(limit=3)
    for prompt in ("a", "b", "c", "a", "d"):
        history.add(prompt)
    assert history.entries == ["d", "a", "c"]
    history.seed(["e", "d"])
    assert history.entries == ["d", "a", "c"]
    history = PromptHistory(limit=3)
    history.add("now")
    history.seed(["before", "now", "long ago", "ancient"])
    assert history.entries == ["now", "before", "long ago"]


def test_sending_resets_the_walk() -> None:
    history = PromptHistory()
    history.seed(["one", "two"])
    assert history.older("") == "one"
    history.add("three")
    assert history.older("") == "three"
