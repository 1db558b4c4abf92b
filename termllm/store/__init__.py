"""Conversation history in SQLite: the only package that imports sqlite3."""

from termllm.store.exchange import ExportFormatError
from termllm.store.repository import ConversationRecord, HistoryStore, MessageRecord, SearchHit

__all__ = ["ConversationRecord", "ExportFormatError", "HistoryStore", "MessageRecord", "SearchHit"]
