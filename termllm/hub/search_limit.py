"""The most results one Hub search asks for, in a module of its own: the CLI needs it to declare
`search --limit` at every start, and the search code would bring the HTTP stack with it."""

MAX_SEARCH_LIMIT = 100
"""The Hub pages past 1,000, and nobody reads 100 rows."""
