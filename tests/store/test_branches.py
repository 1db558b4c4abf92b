"""Alternatives and the chosen branch: which siblings a message has, and a choice that survives
reopening the database, new messages and export/import."""

from __future__ import annotations

from pathlib import Path

import pytest

from termllm.store import ExportFormatError, HistoryStore, MessageRecord


def tree(store: HistoryStore) -> tuple[str, dict[str, MessageRecord]]:
    """Q1 answered three times; A1 followed up by Q2, which has an edited sibling Q2b."""
    conversation = store.create_conversation("t", None, None, {})
    cid = conversation.id
    m: dict[str, MessageRecord] = {}
    m["q1"] = store.add_message(cid, None, "user", "Q1")
    m["a1"] = store.add_message(cid, m["q1"].id, "assistant", "A1")
    m["q2"] = store.add_message(cid, m["a1"].id, "user", "Q2")
    m["a2"] = store.add_message(cid, m["q2"].id, "assistant", "A2")
    m["q2b"] = store.add_message(cid, m["a1"].id, "user", "Q2b")
    m["a1b"] = store.add_message(cid, m["q1"].id, "assistant", "A1b")
    m["a1c"] = store.add_message(cid, m["q1"].id, "assistant", "A1c")
    return cid, m


def contents(branch: list[MessageRecord]) -> list[str]:
    return [message.content for message in branch]


def test_alternatives_share_parent_and_role_in_creation_order(store: HistoryStore) -> None:
    cid, m = tree(store)
    assert contents(store.alternatives(cid, m["a1b"].id)) == ["A1", "A1b", "A1c"]
    assert contents(store.alternatives(cid, m["q2b"].id)) == ["Q2", "Q2b"]
    assert contents(store.alternatives(cid, m["q1"].id)) == ["Q1"]
    assert contents(store.alternatives(cid, m["a2"].id)) == ["A2"]
    other = store.create_conversation("o", None, None, {})
    with pytest.raises(ValueError, match="not in"):
        store.alternatives(other.id, m["q1"].id)


def test_choosing_a_branch_goes_down_to_its_newest_message_and_survives_reopening(
    store: HistoryStore, db_path: Path
) -> None:
    cid, m = tree(store)
    assert contents(store.current_branch(cid)) == ["Q1", "A1c"]

    assert store.select_branch(cid, m["a1"].id) == m["q2b"].id
    assert contents(store.current_branch(cid)) == ["Q1", "A1", "Q2b"]
    assert store.select_branch(cid, m["q2"].id) == m["a2"].id
    with HistoryStore.open(db_path) as reopened:
        assert contents(reopened.current_branch(cid)) == ["Q1", "A1", "Q2", "A2"]
        assert reopened.get_conversation(cid).leaf_id == m["a2"].id
    # An explicit leaf still wins over the chosen one.
    assert contents(store.current_branch(cid, m["a1b"].id)) == ["Q1", "A1b"]
    with pytest.raises(ValueError, match="not in"):
        store.select_branch(cid, "nothere000")


def test_a_new_message_makes_its_own_branch_current(store: HistoryStore) -> None:
    cid, m = tree(store)
    store.select_branch(cid, m["a1"].id)
    follow = store.add_message(cid, m["q2b"].id, "assistant", "A2b")
    assert store.get_conversation(cid).leaf_id is None
    assert store.current_branch(cid)[-1] == follow
    regenerated = store.add_message(cid, m["q1"].id, "assistant", "A1d")
    assert contents(store.current_branch(cid)) == ["Q1", "A1d"]
    assert store.current_branch(cid)[-1] == regenerated


def test_export_and_import_keep_the_chosen_branch(store: HistoryStore) -> None:
    cid, m = tree(store)
    store.select_branch(cid, m["q2"].id)
    exported = store.export_conversation(cid)
    conversation = exported["conversation"]
    assert isinstance(conversation, dict) and conversation["leaf_id"] == m["a2"].id

    # Imported as another conversation: the messages' ids are taken, so all are new.
    conversation["id"] = "copy"
    [imported] = store.import_conversations([exported]).imported
    assert imported.leaf_id is not None and imported.leaf_id != m["a2"].id
    assert contents(store.current_branch(imported.id)) == ["Q1", "A1", "Q2", "A2"]

    # Exports written before branches could be chosen have no leaf_id: the newest is current.
    del conversation["leaf_id"]
    conversation["id"] = "older copy"
    [older] = store.import_conversations([exported]).imported
    assert older.leaf_id is None
    assert contents(store.current_branch(older.id)) == ["Q1", "A1c"]

    conversation["leaf_id"] = "nowhere"
    with pytest.raises(ExportFormatError, match=r"conversation\.leaf_id 'nowhere' is not one"):
        store.import_conversations([exported])
