"""Conversation history in SQLite: the only package that imports sqlite3."""

from termllm.store.exchange import ExportFormatError
from termllm.store.records import ImportResult
from termllm.store.repository import ConversationRecord, HistoryStore, MessageRecord, SearchHit

__all__ = [
    "ConversationRecord",
    "ExportFormatError",
    "HistoryStore",
    "ImportResult",
    "MessageRecord",
    "SearchHit",
]
