"""Reading a long prompt once: the model state of a prompt that took long to read is kept by its
exact tokens, and the next prompt that starts with the same tokens (another question about the
same piped file, in this process or another) restores it and reads only the rest.

Entries sit beside the conversations' states, in the same memory and disk budgets
(`cache.ram_mb`, `cache.disk_mb`) and the same least-recently-used eviction. An entry is only
ever a head start, as a conversation's state is: it carries the tokens it was made from, only
the part that matches the new prompt token for token is used (the engine drops the rest of the
restored cache as it reads on), and one made with another model file or load setting is never
offered (`state_identity`). It holds what was read, not what was said, so it is kept for
`--no-save` asks too: a cache, not history.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

from termllm.domain import Message, Think
from termllm.engine.base import KvState, LoadedModel
from termllm.services.state_cache import ConversationStates

LONG_PROMPT_TOKENS = 512
"""A prompt with this many tokens still to read takes seconds on a CPU: front ends show how far
reading it got, and its state is kept once it is read."""

MIN_PREFIX_GAIN = 64
"""An entry is restored when it spares reading at least this many more tokens than the model
holds. Every prompt starts with the chat template's opening and the system prompt: a match that
short is read faster than a long prompt's state is moved, and is no hit."""

KEY_START = "prefix-"
"""What an entry's key starts with; conversation ids never do (store/ids.py)."""


def entry_key(tokens: Sequence[int]) -> str:
    """The key of the entry holding `tokens`: the same tokens always give the same key, so
    reading a prompt again replaces its entry rather than adding one."""
    digest = hashlib.sha256(struct.pack(f"<{len(tokens)}i", *tokens))
    return KEY_START + digest.hexdigest()[:32]


class PrefixCache:
    """Safe to share between the threads of one process; entries on disk are shared between
    processes."""

    def __init__(self, states: ConversationStates) -> None:
        self._states = states

    def resume(
        self, model: LoadedModel, messages: Sequence[Message], think: Think, held: int
    ) -> int:
        """Restore the entry that shares the longest start with this prompt, if it covers at
        least MIN_PREFIX_GAIN tokens more than the `held` the model holds already; the prompt
        tokens the model then holds."""
        recent, files = self._states.recent, self._states.files
        if not (recent.enabled or files.enabled):
            return held
        if model.count_prompt_tokens(messages, think) < held + MIN_PREFIX_GAIN:
            return held  # no entry could spare enough: not worth looking
        identity = model.state_identity
        best_key: str | None = None
        best_state: KvState | None = None
        best = held + MIN_PREFIX_GAIN - 1
        in_memory = recent.entries(KEY_START, identity)
        for key, kept in in_memory:
            covered = model.shared_prefix(messages, kept.tokens, think)
            if covered > best:
                best_key, best_state, best = key, kept, covered
        held_in_memory = {key for key, _ in in_memory}
        for key in files.ids(KEY_START, identity):
            if key in held_in_memory:
                continue
            tokens = files.read_tokens(key, identity)
            covered = model.shared_prefix(messages, tokens, think) if tokens is not None else 0
            if covered > best:
                best_key, best_state, best = key, None, covered
        if best_key is None:
            return held
        state = best_state if best_state is not None else files.read(best_key, identity)
        if state is None:
            return held
        if not model.restore_state(state):
            recent.drop([best_key])
            files.discard(best_key, identity, "the engine rejected it")
            return 0
        recent.put(best_key, identity, state)
        return best

    def remember(self, model: LoadedModel) -> None:
        """Keep what the model holds now, a prompt it has just read, as an entry; the disk
        write finishes in the background (ConversationStates.flush waits for it)."""
        states = self._states
        if not (states.recent.enabled or states.files.enabled):
            return
        state = model.save_state()
        if state is None or not state.tokens:
            return
        states.keep(entry_key(state.tokens), model.state_identity, state)
