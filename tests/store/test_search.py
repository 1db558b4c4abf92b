"""Full-text search: other scripts, ranking, characters FTS5 would parse, titles."""

from __future__ import annotations

import pytest

from termllm.store import HistoryStore


def add(store: HistoryStore, *contents: str, title: str = "untitled") -> list[str]:
    conversation = store.create_conversation(title, None, None, {})
    return [store.add_message(conversation.id, None, "user", text).id for text in contents]


def found(store: HistoryStore, query: str) -> list[str | None]:
    return [hit.message_id for hit in store.search(query)]


def test_accents_and_case_are_folded(store: HistoryStore) -> None:
    (cafe,) = add(store, "Un café au lait, s'il vous plaît")
    for query in ("cafe", "CAFÉ", "Café", "plait", "CAFE LAIT"):
        assert found(store, query) == [cafe]
    assert store.search("cafe")[0].snippet == "Un [café] au lait, s'il vous plaît"


def test_cyrillic_and_greek(store: HistoryStore) -> None:
    cyrillic, greek = add(store, "Привет, как дела?", "Καλημέρα κόσμε")
    assert found(store, "привет") == [cyrillic]
    assert found(store, "ДЕЛА") == [cyrillic]
    assert found(store, "ΚΑΛΗΜΈΡΑ") == [greek]
    # unicode61 strips diacritics from Latin letters only.
    assert found(store, "καλημερα") == []


def test_cjk_text_is_found_by_any_substring(store: HistoryStore) -> None:
    chinese, japanese, korean = add(
        store, "我们明天去东京塔看看", "東京タワーに行きました", "학교에 갔어요"
    )
    assert found(store, "东京塔") == [chinese]
    assert found(store, "东京") == [chinese]
    assert found(store, "塔") == [chinese]
    assert found(store, "東京タワー") == [japanese]
    assert found(store, "行き") == [japanese]
    assert found(store, "학교") == [korean]
    assert found(store, "东京 看看") == [chinese]
    assert found(store, "东京 東京") == []
    assert store.search("东京塔")[0].snippet == "我们明天去[东京塔]看看"
    assert store.search("东京 看看")[0].snippet == "我们明天去[东京]塔[看看]"


def test_cjk_queries_mix_with_latin_words(store: HistoryStore) -> None:
    (mixed,) = add(store, "Python で 東京 の天気を調べる")
    add(store, "Python only here")
    assert found(store, "python 東京") == [mixed]
    assert found(store, "python 天気を") == [mixed]


def test_like_wildcards_in_short_cjk_queries_are_literal(store: HistoryStore) -> None:
    plain, percent, underscore = add(store, "东京", "东%", "东_")
    assert found(store, "东%") == [percent]
    assert found(store, "东_") == [underscore]
    assert set(found(store, "东")) == {plain, percent, underscore}


def test_better_matches_rank_first(store: HistoryStore) -> None:
    dense, sparse = add(
        store,
        "llama llama llama",
        "the llama is an animal that lives in the mountains of south america, far away",
    )
    add(store, "alpaca", "vicuna", "guanaco", "camel")
    hits = store.search("llama")
    assert [hit.message_id for hit in hits] == [dense, sparse]
    assert hits[0].rank < hits[1].rank


def test_short_cjk_queries_rank_by_occurrences(store: HistoryStore) -> None:
    once, thrice = add(store, "一只猫在睡觉", "猫猫猫")
    assert found(store, "猫") == [thrice, once]


def test_all_terms_must_match(store: HistoryStore) -> None:
    both, _alpha = add(store, "alpha and beta", "alpha alone")
    assert found(store, "alpha beta") == [both]


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '"unbalanced',
        "*",
        "foo*",
        "-",
        "- -x",
        "col:val",
        "content:x",
        "NEAR(a b",
        "AND",
        "a OR NOT b",
        "( )",
        "^start",
        "'",
        "\\",
        "%",
        "_",
        "{x}",
        '东"京*',
        "東京:タワー",
        "🙂",
        "\x00",
    ],
)
def test_fts_syntax_in_queries_is_text(store: HistoryStore, query: str) -> None:
    add(store, "some text with NEAR and AND OR NOT words, col:val and foo*")
    store.search(query)


def test_punctuated_terms_match_as_phrases(store: HistoryStore) -> None:
    hyphen, colon, quoted, near = add(
        store, "use foo-bar here", "key:value pairs", 'say "hello" twice', "NEAR(x)"
    )
    assert found(store, "foo-bar") == [hyphen]
    assert found(store, "key:value") == [colon]
    assert found(store, '"hello"') == [quoted]
    assert found(store, "NEAR(x)") == [near]


def test_titles_match_as_well_as_messages(store: HistoryStore) -> None:
    conversation = store.create_conversation("Sourdough baking notes", None, None, {})
    question = store.add_message(conversation.id, None, "user", "how long to proof sourdough?")
    hits = store.search("sourdough")
    assert {(hit.message_id, hit.role) for hit in hits} == {(None, None), (question.id, "user")}
    title_hit = next(hit for hit in hits if hit.message_id is None)
    assert title_hit.snippet == "[Sourdough] baking notes"
    assert {hit.conversation_title for hit in hits} == {"Sourdough baking notes"}
    assert {hit.conversation_id for hit in hits} == {conversation.id}


def test_snippets_are_one_line_and_cut_around_the_match(store: HistoryStore) -> None:
    add(store, "first line\n\n  second zebra line", "文" * 200 + "斑马线" + "字" * 200)
    assert store.search("zebra")[0].snippet == "first line second [zebra] line"
    snippet = store.search("斑马线")[0].snippet
    assert snippet.startswith("…") and snippet.endswith("…") and "[斑马线]" in snippet
    assert len(snippet) < 100


def test_empty_queries_and_limits(store: HistoryStore) -> None:
    add(store, *(f"word number {n}" for n in range(5)))
    assert store.search("") == store.search("   ") == store.search("*** --") == []
    assert len(store.search("word", limit=3)) == 3
    assert store.search("word", limit=0) == []
