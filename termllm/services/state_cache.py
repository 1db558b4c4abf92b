"""Continuing a conversation without reading it again: the model state (KV cache) of recent
conversations kept in memory, and of every conversation on disk, restored when it covers more
of the prompt than what the model holds now.

A state is only ever a head start. It carries the tokens it was made from, and only the part
that matches the new prompt token for token is used, so an edited history, a dropped turn or
a changed system prompt cost a shorter match, never a wrong answer. States made with another
model file, context size or engine version are never offered (see `state_identity`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from termllm.config import Config
from termllm.domain import Message, Think
from termllm.engine.base import KvState, LoadedModel
from termllm.services.side_writes import SideWrites
from termllm.services.state_files import StateFiles

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

MIB = 1024 * 1024
MIN_GAIN_TOKENS = 16
"""Restoring moves megabytes; below this many tokens, evaluating them is as quick."""


class RecentStates:
    """States in memory, least recently used dropped first once past the size limit."""

    def __init__(self, limit_bytes: int) -> None:
        self._limit_bytes = limit_bytes
        self._lock = threading.Lock()
        self._states: OrderedDict[str, tuple[str, KvState]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._limit_bytes > 0

    def get(self, conversation_id: str, identity: str) -> KvState | None:
        with self._lock:
            entry = self._states.get(conversation_id)
            if entry is None or entry[0] != identity:
                return None
            self._states.move_to_end(conversation_id)
            return entry[1]

    def put(self, conversation_id: str, identity: str, state: KvState) -> None:
        with self._lock:
            self._states.pop(conversation_id, None)
            if state.size_bytes > self._limit_bytes:
                return
            self._states[conversation_id] = (identity, state)
            total = sum(kept.size_bytes for _, kept in self._states.values())
            while total > self._limit_bytes:
                _, (_, dropped) = self._states.popitem(last=False)
                total -= dropped.size_bytes

    def drop(self, conversation_ids: Sequence[str]) -> None:
        with self._lock:
            for conversation_id in conversation_ids:
                self._states.pop(conversation_id, None)

    def entries(self, starting: str, identity: str) -> list[tuple[str, KvState]]:
        """The states of this identity whose ids start so, most recently used first."""
        with self._lock:
            return [
                (state_id, state)
                for state_id, (kept_identity, state) in reversed(self._states.items())
                if kept_identity == identity and state_id.startswith(starting)
            ]

    def total_bytes(self) -> int:
        with self._lock:
            return sum(state.size_bytes for _, state in self._states.values())


class ConversationStates:
    """Safe to share between the threads of one process; files are shared between processes."""

    def __init__(self, config: Config, side_writes: SideWrites) -> None:
        cache = config.settings.cache
        self.recent = RecentStates(max(cache.ram_mb, 0) * MIB)
        self.files = StateFiles(
            config.paths.kv_state_dir,
            max(cache.disk_mb, 0) * MIB,
            config.paths.app_log_file,
            side_writes,
        )
        self._writer_started: ThreadPoolExecutor | None = None
        # The app saves from its worker thread and deletes from its event loop.
        self._writer_lock = threading.Lock()
        self._last_write: Future[None] | None = None

    def resume(
        self,
        model: LoadedModel,
        conversation_id: str,
        messages: Sequence[Message],
        think: Think = Think.AUTO,
    ) -> int:
        """Restore the conversation's state if it saves evaluating at least MIN_GAIN_TOKENS
        prompt tokens; the prompt tokens the model then holds already."""
        identity = model.state_identity
        held = model.shared_prefix(messages, None, think)
        in_memory = self.recent.get(conversation_id, identity)
        if in_memory is not None:
            covered = model.shared_prefix(messages, in_memory.tokens, think)
            if covered < held + MIN_GAIN_TOKENS:
                return held
            if model.restore_state(in_memory):
                return covered
            self.recent.drop([conversation_id])
            return 0
        saved_tokens = self.files.read_tokens(conversation_id, identity)
        if saved_tokens is None:
            return held
        covered = model.shared_prefix(messages, saved_tokens, think)
        if covered < held + MIN_GAIN_TOKENS:
            return held
        saved = self.files.read(conversation_id, identity)
        if saved is None:
            return held
        if not model.restore_state(saved):
            self.files.discard(conversation_id, identity, "the engine rejected it")
            return 0
        self.recent.put(conversation_id, identity, saved)
        return covered

    def remember(self, model: LoadedModel, conversation_id: str) -> None:
        """Keep what the model holds now as the conversation's state, in memory and on disk."""
        if not (self.recent.enabled or self.files.enabled):
            return
        state = model.save_state()
        if state is None or not state.tokens:
            return
        self.keep(conversation_id, model.state_identity, state)

    def keep(self, state_id: str, identity: str, state: KvState) -> None:
        """Keep `state` under `state_id` (a conversation's, or a prompt's, see prefix_cache.py)
        in memory, and write it to disk in the background."""
        self.recent.put(state_id, identity, state)
        if self.files.enabled:
            self._last_write = self._writer.submit(self.files.write, state_id, identity, state)

    @property
    def _writer(self) -> ThreadPoolExecutor:
        """Disk writes happen in order on one thread, so the answer that produced a state never
        waits for it; Python finishes queued writes before the process exits. Started on first
        use: most commands never save a state."""
        with self._writer_lock:
            if self._writer_started is None:
                from concurrent.futures import ThreadPoolExecutor

                self._writer_started = ThreadPoolExecutor(1, thread_name_prefix="termllm-kv")
            return self._writer_started

    def forget(self, conversation_ids: Sequence[str]) -> None:
        """Remove the conversations' states, after any write of them still queued."""
        self.recent.drop(conversation_ids)
        self._writer.submit(self.files.delete, list(conversation_ids)).result()

    def flush(self) -> None:
        """Wait until every state handed to `remember` is on disk."""
        if self._last_write is not None:
            self._last_write.result()
