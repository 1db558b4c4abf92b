"""Conversations kept in the history store: starting, continuing, saving each message as it is
produced, branching (regenerate, edit, choosing an alternative) and the browsing commands (list,
show, search, export, import, rename, delete)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from termllm.config import Config
from termllm.domain import Completion, GenParams, Message, Role
from termllm.errors import ConversationNotFoundError, UsageError
from termllm.services.branches import (
    Alternatives,
    BranchEntry,
    Exchange,
    PendingAnswer,
    branch_entries,
    chat_messages,
    last_question,
)
from termllm.services.conversation_settings import ConversationSettings, params_json
from termllm.services.export_markdown import conversation_markdown
from termllm.services.state_cache import ConversationStates

if TYPE_CHECKING:
    from termllm.store import (
        ConversationRecord,
        HistoryStore,
        ImportResult,
        MessageRecord,
        SearchHit,
    )

TITLE_LENGTH = 80
# Enough hits that a word common to many messages still finds every conversation holding it.
FILTER_HITS = 1000
EXPORT_ALL_FORMAT = "termllm.history"


@dataclass(frozen=True)
class Continuation:
    """A saved conversation ready to be sent on: its messages on the current branch."""

    conversation: ConversationRecord
    messages: tuple[Message, ...]
    leaf_id: str | None


def title_from(prompt: str) -> str:
    """The first non-empty line of the first prompt, trimmed to a readable length."""
    first_line = next((line.strip() for line in prompt.splitlines() if line.strip()), "")
    if len(first_line) > TITLE_LENGTH:
        first_line = first_line[: TITLE_LENGTH - 1].rstrip() + "…"
    return first_line or "untitled"


class HistoryService:
    def __init__(self, config: Config, states: ConversationStates) -> None:
        self._config = config
        self._states = states
        self._opened: HistoryStore | None = None

    @property
    def enabled_by_default(self) -> bool:
        return self._config.settings.history.save

    @property
    def store(self) -> HistoryStore:
        if self._opened is None:
            # Imported here: the store brings sqlite3, which `termllm ls` and `--help` never need.
            from termllm.store import HistoryStore

            self._opened = HistoryStore.open(self._config.paths.history_db)
        return self._opened

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()
            self._opened = None

    def start(
        self,
        model_ref: str | None,
        system_prompt: str | None,
        params: GenParams,
        prompt: str,
        n_ctx: int | None = None,
    ) -> ConversationRecord:
        # An empty system prompt is kept as chosen ("none"); only None means the default.
        return self.store.create_conversation(
            title_from(prompt), model_ref, system_prompt, params_json(params, n_ctx)
        )

    def resume(self, conversation_id: str | None) -> Continuation:
        """The conversation to continue: the given id (or unique prefix), else the latest."""
        store = self.store
        if conversation_id:
            conversation = store.get_conversation(store.resolve_id(conversation_id))
        else:
            latest = store.latest_conversation()
            if latest is None:
                raise ConversationNotFoundError("no conversation to continue yet")
            conversation = latest
        branch = store.current_branch(conversation.id)
        return Continuation(conversation, chat_messages(branch), branch[-1].id if branch else None)

    def save_question(
        self,
        resumed: Continuation | None,
        model_ref: str | None,
        system_prompt: str | None,
        params: GenParams,
        text: str,
        n_ctx: int | None = None,
    ) -> Exchange:
        """Commit the question (starting a conversation if needed) before any answer exists, so
        a crash or a kill mid-answer still keeps it. `model_ref` is None when no model could be
        chosen: the conversation then answers with the default one."""
        if resumed is not None:
            conversation_id, parent_id = resumed.conversation.id, resumed.leaf_id
        else:
            conversation_id = self.start(model_ref, system_prompt, params, text, n_ctx).id
            parent_id = None
        question = self.store.add_message(conversation_id, parent_id, Role.USER.value, text)
        return Exchange(conversation_id, question.id)

    def save_answer(
        self, exchange: Exchange, completion: Completion, model_ref: str | None
    ) -> MessageRecord:
        """The answer as it ended: complete, cut by length, cancelled or failed."""
        timings = completion.timings
        return self.store.add_message(
            exchange.conversation_id,
            exchange.question_id,
            Role.ASSISTANT.value,
            completion.content,
            model=model_ref,
            prompt_tokens=completion.usage.prompt_tokens,
            completion_tokens=completion.usage.completion_tokens,
            timings={
                "ttft_ms": timings.ttft_ms,
                "prompt_tokens_per_s": timings.prompt_tokens_per_s,
                "decode_tokens_per_s": timings.decode_tokens_per_s,
                "load_ms": timings.load_ms,
            },
            finish_reason=completion.finish_reason.value,
            error=completion.error,
            reasoning=completion.reasoning or None,
            reasoning_tokens=completion.usage.reasoning_tokens or None,
        )

    def branch(self, conversation_id: str) -> list[BranchEntry]:
        """The current branch, each message with its place among its alternatives."""
        conversation = self.find(conversation_id)
        return branch_entries(*self.store.messages_and_branch(conversation.id))

    def alternatives(self, conversation_id: str, message_id: str) -> Alternatives:
        """The alternatives of a message; `index` is the one on the current branch (the message
        itself when none is)."""
        conversation = self.find(conversation_id)
        found = tuple(self.store.alternatives(conversation.id, message_id))
        on_branch = {message.id for message in self.store.current_branch(conversation.id)}
        ids = [message.id for message in found]
        index = next((n for n, id_ in enumerate(ids) if id_ in on_branch), ids.index(message_id))
        return Alternatives(found, index)

    def select_alternative(self, conversation_id: str, message_id: str) -> None:
        """Continue from `message_id`: its branch (down to its newest reply) becomes current, for
        this app and for `ask -c` alike, until a new message is added."""
        self.store.select_branch(self.find(conversation_id).id, message_id)

    def regenerate(self, conversation_id: str, question_id: str | None = None) -> PendingAnswer:
        """The question to answer again (default: the last one on the current branch). Nothing
        is saved now: the new answer becomes a sibling of the old ones when it is saved."""
        conversation = self.find(conversation_id)
        if question_id is None:
            current = self.store.current_branch(conversation.id)
            question = last_question(current)
            if question is None:
                raise UsageError("there is no question to answer again yet")
            question_id = question.id
            branch = current[: current.index(question) + 1]
        else:
            branch = self.store.current_branch(conversation.id, question_id)
        if branch[-1].role != Role.USER.value:
            raise ValueError(f"message {question_id!r} is not a question")
        exchange = Exchange(conversation.id, question_id)
        return PendingAnswer(conversation, chat_messages(branch), exchange)

    def save_edit(self, conversation_id: str, question_id: str, text: str) -> PendingAnswer:
        """Save an edited question as a sibling of `question_id`, which is kept with its answers."""
        conversation = self.find(conversation_id)
        branch = self.store.current_branch(conversation.id, question_id)
        if branch[-1].role != Role.USER.value:
            raise ValueError(f"message {question_id!r} is not a question")
        edited = self.store.add_message(
            conversation.id, branch[-1].parent_id, Role.USER.value, text
        )
        exchange = Exchange(conversation.id, edited.id)
        return PendingAnswer(conversation, chat_messages([*branch[:-1], edited]), exchange)

    def recent(self, limit: int | None) -> list[ConversationRecord]:
        return self.store.list_conversations(limit)

    def find(self, conversation_id: str) -> ConversationRecord:
        return self.store.get_conversation(self.store.resolve_id(conversation_id))

    def transcript(self, conversation_id: str) -> tuple[ConversationRecord, list[MessageRecord]]:
        """The conversation and its current branch, system prompt first when there is one."""
        conversation = self.find(conversation_id)
        return conversation, self.store.current_branch(conversation.id)

    def search(self, query: str, limit: int, *, reasoning: bool = False) -> list[SearchHit]:
        """Titles and messages matching `query`; answers' reasoning too with `reasoning`."""
        if not query.strip():
            raise UsageError("nothing to search for")
        return self.store.search(query, limit, reasoning=reasoning)

    def filter_conversations(self, query: str, *, reasoning: bool = False) -> dict[str, SearchHit]:
        """The conversations whose title or messages (or, with `reasoning`, answers' reasoning)
        match `query` as typed so far (each word may be the start of a longer one), with each
        one's best hit; {} when nothing can match."""
        best: dict[str, SearchHit] = {}
        for hit in self.store.search(query, FILTER_HITS, prefix=True, reasoning=reasoning):
            best.setdefault(hit.conversation_id, hit)
        return best

    def recent_prompts(self, limit: int) -> list[str]:
        """What the user asked before, in any conversation: distinct, most recent first."""
        return self.store.recent_prompts(limit)

    def rename(self, conversation_id: str, title: str) -> ConversationRecord:
        if not title.strip():
            raise UsageError("a title cannot be empty")
        conversation = self.find(conversation_id)
        self.store.rename(conversation.id, title.strip())
        return self.store.get_conversation(conversation.id)

    def set_model(self, conversation_id: str, model_ref: str) -> ConversationRecord:
        """The model the conversation continues with."""
        return self.store.update_conversation(self.find(conversation_id).id, model=model_ref)

    def save_settings(
        self, conversation_id: str, settings: ConversationSettings
    ) -> ConversationRecord:
        """The conversation's own system prompt, sampling parameters and context size."""
        return self.store.update_conversation(
            self.find(conversation_id).id,
            system_prompt=settings.system_prompt,
            params=params_json(settings.params, settings.n_ctx),
        )

    def delete(self, conversation_ids: Sequence[str]) -> list[ConversationRecord]:
        found = [self.find(conversation_id) for conversation_id in conversation_ids]
        deleted = [conversation.id for conversation in found]
        self.store.delete(deleted)
        # The saved model state would be the conversation's text in another form.
        self._states.forget(deleted)
        return found

    def export_json(self, conversation_ids: Sequence[str]) -> dict[str, Any]:
        """One conversation's export as it is, or several wrapped in a history document."""
        exports = [self.store.export_conversation(self.find(cid).id) for cid in conversation_ids]
        if len(exports) == 1:
            return exports[0]
        return {"format": EXPORT_ALL_FORMAT, "version": 1, "conversations": exports}

    def export_markdown(self, conversation_ids: Sequence[str]) -> str:
        """The conversations' current branches as one Markdown document, for reading."""
        return "\n---\n\n".join(
            conversation_markdown(*self.transcript(cid)) for cid in conversation_ids
        )

    def all_ids(self) -> list[str]:
        return [conversation.id for conversation in self.store.list_conversations(None)]

    def import_json(self, data: Any) -> ImportResult:
        """Restore exported conversations, all or none (see HistoryStore.import_conversations):
        nothing existing is touched, and a conversation the history holds is skipped."""
        if isinstance(data, Mapping) and data.get("format") == EXPORT_ALL_FORMAT:
            items = data.get("conversations")
            if not isinstance(items, list):
                raise UsageError("not a termllm history export: 'conversations' is not a list")
            return self.store.import_conversations(items)
        if not isinstance(data, Mapping):
            raise UsageError("not a termllm export: expected a JSON object")
        return self.store.import_conversations([data])
