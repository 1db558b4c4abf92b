"""Full-text search over message content and conversation titles.

Two paths, chosen by the query:

- Words (the usual case): the unicode61 indexes, which fold case and Latin diacritics ("cafe"
  finds "Café"), ranked by bm25, with FTS5's own snippets.
- Substrings, when a term contains a character of a script written without spaces between
  words (Chinese, Japanese, Thai…) or with particles glued to words (Korean): the word index
  holds whole phrases there as single tokens, so "東京" would never match "東京タワーに". The
  trigram indexes (over text in those scripts only) find any substring of three or more
  characters, ranked by bm25. Shorter terms cannot use a trigram index: they filter the
  trigram matches with LIKE, and a query made only of such terms scans all text with LIKE,
  ranked by how often the terms occur, newest first among equals.

Every user term is quoted (or LIKE-escaped), so FTS5 syntax such as `"`, `*`, `-`, `:`, `AND`
or `NEAR(` is searched for as text and never raises a syntax error. Terms are ANDed. With
`prefix`, a word term also matches longer words ("pyth" finds "Python"), which is what a filter
typed letter by letter needs; substring searches match inside words anyway.

An answer's reasoning is searched only with `reasoning` (its own word index; substrings in it by
LIKE): what the model thought on the way is not what it answered."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Literal

from termllm.safe_text import one_line
from termllm.store.migrations import UNSPACED_SCRIPTS
from termllm.store.records import SearchHit

MARK_START = "["
MARK_END = "]"
ELLIPSIS = "…"
# Tokens around the match in a word snippet; characters in a substring snippet.
SNIPPET_WORDS = 16
SNIPPET_CHARS = 80
TRIGRAM = 3


def query_terms(query: str) -> list[str]:
    """The whitespace-separated terms that can match anything (not pure punctuation)."""
    return [term for term in query.split() if any(char.isalnum() for char in term)]


def needs_substrings(terms: Sequence[str]) -> bool:
    return any(
        low <= ord(char) <= high
        for term in terms
        for char in term
        for low, high in UNSPACED_SCRIPTS
    )


def search(
    conn: sqlite3.Connection,
    query: str,
    limit: int,
    *,
    prefix: bool = False,
    reasoning: bool = False,
) -> list[SearchHit]:
    terms = query_terms(query)
    if not terms or limit <= 0:
        return []
    if not needs_substrings(terms):
        return _fts_search(conn, terms, terms, "fts", limit, prefix=prefix, reasoning=reasoning)
    long_terms = [term for term in terms if len(term) >= TRIGRAM]
    if long_terms:
        return _fts_search(conn, long_terms, terms, "trigram", limit, reasoning=reasoning)
    return _like_search(conn, terms, limit, reasoning=reasoning)


# The columns of a hit from a message's reasoning, for the LIKE selects of both paths.
_REASONING_HEAD = "c.id, c.title, m.id, 'reasoning'"
_REASONING_SOURCE = "messages AS m JOIN conversations AS c ON c.id = m.conversation_id"


def _fts_search(
    conn: sqlite3.Connection,
    match_terms: list[str],
    terms: list[str],
    kind: Literal["fts", "trigram"],
    limit: int,
    *,
    prefix: bool = False,
    reasoning: bool = False,
) -> list[SearchHit]:
    """Rank with an FTS5 index; `terms` not in `match_terms` (too short) must occur as well."""
    star = "*" if prefix else ""
    params: dict[str, object] = {"match": " ".join(_quoted(term) + star for term in match_terms)}
    short = [term for term in terms if term not in match_terms]
    params |= {f"like{n}": _like_pattern(term) for n, term in enumerate(short)}

    def select(index: str, text: str, head: str, joins: str, created: str) -> str:
        # Word snippets come from FTS5; trigram "tokens" are characters, too few for a
        # useful snippet, so those are cut in Python from the whole text.
        shown = (
            f"snippet({index}, 0, '{MARK_START}', '{MARK_END}', '{ELLIPSIS}', {SNIPPET_WORDS})"
            if kind == "fts"
            else text
        )
        likes = "".join(f" AND {text} LIKE :like{n} ESCAPE '\\'" for n in range(len(short)))
        return (
            f"SELECT {head}, {shown}, bm25({index}) AS score, {created} AS created "
            f"FROM {index} {joins} WHERE {index} MATCH :match{likes}"
        )

    sql = (
        select(
            f"conversations_{kind}",
            "c.title",
            "c.id, c.title, NULL, NULL",
            f"JOIN conversations AS c ON c.seq = conversations_{kind}.rowid",
            "c.updated_at",
        )
        + " UNION ALL "
        + select(
            f"messages_{kind}",
            "m.content",
            "c.id, c.title, m.id, m.role",
            f"JOIN messages AS m ON m.seq = messages_{kind}.rowid "
            "JOIN conversations AS c ON c.id = m.conversation_id",
            "m.created_at",
        )
        + (_reasoning_select(kind, select, terms, params) if reasoning else "")
        + " ORDER BY score, created DESC LIMIT :limit"
    )
    rows = conn.execute(sql, params | {"limit": limit}).fetchall()
    if kind == "fts":
        return [_hit(row, one_line(row[4])) for row in rows]
    return [_hit(row, cut_snippet(row[4], terms)) for row in rows]


def _reasoning_select(
    kind: Literal["fts", "trigram"],
    select: Callable[[str, str, str, str, str], str],
    terms: list[str],
    params: dict[str, object],
) -> str:
    """The UNION ALL arm that searches reasoning: its word index, or LIKE for substrings (it
    has no trigram index; reasoning is searched only when asked)."""
    if kind == "fts":
        return " UNION ALL " + select(
            "reasoning_fts",
            "m.reasoning",
            _REASONING_HEAD,
            "JOIN messages AS m ON m.seq = reasoning_fts.rowid "
            "JOIN conversations AS c ON c.id = m.conversation_id",
            "m.created_at",
        )
    params |= {f"rlike{n}": _like_pattern(term) for n, term in enumerate(terms)}
    likes = " AND ".join(f"m.reasoning LIKE :rlike{n} ESCAPE '\\'" for n in range(len(terms)))
    return (
        f" UNION ALL SELECT {_REASONING_HEAD}, m.reasoning, 0.0 AS score, m.created_at AS created"
        f" FROM {_REASONING_SOURCE} WHERE {likes}"
    )


def _like_search(
    conn: sqlite3.Connection, terms: list[str], limit: int, *, reasoning: bool = False
) -> list[SearchHit]:
    params: dict[str, object] = {"limit": limit}
    params |= {f"term{n}": term for n, term in enumerate(terms)}
    params |= {f"like{n}": _like_pattern(term) for n, term in enumerate(terms)}

    def select(text: str, head: str, source: str, created: str) -> str:
        likes = " AND ".join(f"{text} LIKE :like{n} ESCAPE '\\'" for n in range(len(terms)))
        # Minus the number of occurrences (case-sensitive, which CJK text does not have).
        occurrences = " + ".join(
            f"(length({text}) - length(replace({text}, :term{n}, ''))) / length(:term{n})"
            for n in range(len(terms))
        )
        return (
            f"SELECT {head}, {text}, -1.0 * ({occurrences}) AS score, {created} AS created "
            f"FROM {source} WHERE {likes}"
        )

    sql = (
        select("c.title", "c.id, c.title, NULL, NULL", "conversations AS c", "c.updated_at")
        + " UNION ALL "
        + select(
            "m.content",
            "c.id, c.title, m.id, m.role",
            _REASONING_SOURCE,
            "m.created_at",
        )
        + (
            " UNION ALL "
            + select("m.reasoning", _REASONING_HEAD, _REASONING_SOURCE, "m.created_at")
            if reasoning
            else ""
        )
        + " ORDER BY score, created DESC LIMIT :limit"
    )
    return [_hit(row, cut_snippet(row[4], terms)) for row in conn.execute(sql, params)]


def _hit(row: Sequence[Any], snippet: str) -> SearchHit:
    return SearchHit(
        conversation_id=row[0],
        conversation_title=row[1],
        message_id=row[2],
        role=row[3],
        snippet=snippet,
        rank=float(row[5]),
    )


def cut_snippet(text: str, terms: Sequence[str], width: int = SNIPPET_CHARS) -> str:
    """About `width` characters of `text` around the first match, every match marked."""
    pattern = re.compile(
        "|".join(re.escape(term) for term in sorted(terms, key=len, reverse=True)), re.IGNORECASE
    )
    first = pattern.search(text)
    start = 0 if first is None else max(0, first.start() - width // 3)
    end = min(len(text), start + width)
    marked = pattern.sub(lambda match: f"{MARK_START}{match.group()}{MARK_END}", text[start:end])
    return one_line(
        (ELLIPSIS if start > 0 else "") + marked + (ELLIPSIS if end < len(text) else "")
    )


def _quoted(term: str) -> str:
    """An FTS5 string: inside double quotes only `"` is special (doubled)."""
    return '"' + term.replace('"', '""') + '"'


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
