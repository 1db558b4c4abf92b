"""Asking a model: which model, loading it, fitting the conversation into its context."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from termllm.config import Config
from termllm.domain import (
    ChosenModel,
    Chunk,
    Completion,
    GenParams,
    LocalModel,
    Message,
    PromptProgress,
    Role,
    ServerModel,
    ServerRef,
    Think,
)
from termllm.engine.base import Engine, GpuLayers, LoadedModel, LoadRequest
from termllm.errors import ModelNotFoundError, StorageError, UsageError
from termllm.services.models import ModelService
from termllm.services.prefix_cache import LONG_PROMPT_TOKENS, PrefixCache
from termllm.services.servers import ServerService
from termllm.services.side_writes import SideWrites
from termllm.services.state_cache import ConversationStates
from termllm.setting_fields import FlashAttention, KvCacheType, MemoryOptions
from termllm.state import StateFile

if TYPE_CHECKING:
    from termllm.engine.planning import LoadPlan

# With no max_tokens the answer may use whatever context is left, but the prompt must leave it
# some room: at least this many tokens, or a quarter of a small context.
ANSWER_ROOM_TOKENS = 512


@dataclass(frozen=True)
class LoadOptions:
    """Per-call overrides of the model settings (None: use the settings)."""

    n_ctx: int | None = None
    beyond_trained: bool = False
    """Keep `n_ctx` even above the model's trained context (`ask --force-ctx`)."""
    gpu_layers: GpuLayers | None = None
    threads: int | None = None
    chat_template: str | None = None
    kv_cache_type: KvCacheType | None = None
    flash_attention: FlashAttention | None = None


@dataclass(frozen=True)
class FittedPrompt:
    messages: tuple[Message, ...]
    prompt_tokens: int
    warnings: tuple[str, ...]


class ChatService:
    def __init__(
        self,
        config: Config,
        models: ModelService,
        engine_factory: Callable[[], Engine],
        states: ConversationStates,
        side_writes: SideWrites,
        servers: ServerService,
    ) -> None:
        self._config = config
        self._models = models
        self.servers = servers
        self._states = states
        self._prefixes = PrefixCache(states)
        self.side_writes = side_writes
        self._engine_factory = engine_factory
        self._engine: Engine | None = None
        self._state = StateFile(config.paths.state_file)

    def default_params(self) -> GenParams:
        generation = self._config.settings.generation
        return GenParams(
            temperature=generation.temperature,
            top_p=generation.top_p,
            top_k=generation.top_k,
            min_p=generation.min_p,
            repeat_penalty=generation.repeat_penalty,
            seed=None if generation.seed < 0 else generation.seed,
            max_tokens=generation.max_tokens or None,
            think=parse_think(generation.think, "generation.think"),
            think_budget=generation.think_budget if generation.think_budget >= 0 else None,
        )

    def default_system_prompt(self) -> str:
        return self._config.settings.generation.system

    def choose_model(self, ref: str | None, *, saved: bool = False) -> ChosenModel:
        """The named model; else the configured default, the last used, or the only one.
        `saved`: `ref` was read from the history (a conversation's model), not given now."""
        if ref:
            server_ref = self._server_ref(ref)
            if server_ref is not None:
                return self.servers.find(server_ref)
            return self._models.find_saved(ref) if saved else self._models.find(ref)
        default = self._config.settings.models.default
        if default:
            server_ref = self._server_ref(default)
            if server_ref is not None:
                return self.servers.find(server_ref)
            return self._models.find(default)
        models = self._models.list_models()
        used = [model for model in models if model.last_used is not None]
        if used:
            return max(used, key=lambda model: model.last_used or 0.0)
        if len(models) == 1:
            return models[0]
        if not models:
            raise ModelNotFoundError(
                "no models on disk yet: pull one, e.g."
                " `termllm pull bartowski/SmolLM2-135M-Instruct-GGUF`"
            )
        choices = ", ".join(model.ref for model in models[:5])
        raise UsageError(
            f"several models on disk and none chosen: pass -m REF (e.g. {choices})"
            " or set models.default"
        )

    def _server_ref(self, text: str) -> ServerRef | None:
        if not text.lstrip().startswith("@"):
            return None
        ref = self._models.parse(text)
        assert isinstance(ref, ServerRef)
        return ref

    def load(self, model: ChosenModel, options: LoadOptions) -> LoadedModel:
        """A local model loaded here, or a server's made ready (load options do not apply:
        the server chose them)."""
        if isinstance(model, ServerModel):
            return self.servers.connect(model)
        if self._engine is None:
            self._engine = self._engine_factory()
        loaded = self._engine.load(self._request(model, options))
        try:
            self._state.mark_used(model.path)
        except StorageError as err:
            self.side_writes.failed(
                self._config.paths.state_file,
                f"when models were last used is not saved ({err.message})",
            )
        return loaded

    def plan(self, model: LocalModel, options: LoadOptions) -> LoadPlan:
        """What loading would choose on this machine, and why, without loading the weights."""
        from termllm.engine.planning import plan_load

        return plan_load(self._request(model, options))

    def _request(self, model: LocalModel, options: LoadOptions) -> LoadRequest:
        settings = self._config.settings.models
        return LoadRequest(
            model_path=model.path,
            context_limit=settings.context_size,
            n_ctx=options.n_ctx,
            beyond_trained=options.beyond_trained,
            gpu_layers=(
                options.gpu_layers
                if options.gpu_layers is not None
                else parse_gpu_layers(settings.gpu_layers, "models.gpu_layers")
            ),
            threads=options.threads or settings.threads or None,
            memory=MemoryOptions(
                options.kv_cache_type or settings.memory.kv_type,
                options.flash_attention or settings.memory.flash_attention,
            ),
            chat_template=options.chat_template or settings.chat_template or None,
            log_file=self._config.paths.native_log_file,
        )

    def fit(
        self, model: LoadedModel, messages: Sequence[Message], params: GenParams
    ) -> FittedPrompt:
        """Drop the oldest turns (never the system prompt), then cut the last prompt, to fit.
        A server counts its own prompt: what does not fit is its error to report."""
        if model.report.server is not None:
            return FittedPrompt(tuple(messages), 0, ())
        n_ctx = model.report.n_ctx
        room = params.max_tokens or min(ANSWER_ROOM_TOKENS, n_ctx // 4)
        warnings: list[str] = []
        if room >= n_ctx:
            room = n_ctx // 2
            warnings.append(f"max tokens cut to {room}: the context holds {n_ctx} tokens")
        budget = n_ctx - room
        kept = list(messages)
        dropped = 0
        while model.count_prompt_tokens(kept, params.think) > budget:
            first_turn = next((i for i, m in enumerate(kept) if m.role is not Role.SYSTEM), None)
            if first_turn is None or first_turn == len(kept) - 1:
                break
            del kept[first_turn]
            dropped += 1
        if dropped:
            warnings.append(f"dropped the {dropped} oldest messages to fit the context")
        tokens = model.count_prompt_tokens(kept, params.think)
        if tokens > budget:
            kept[-1], tokens, cut_warning = self._cut_last(
                model, kept, budget, tokens, params.think
            )
            warnings.append(cut_warning)
        return FittedPrompt(tuple(kept), tokens, tuple(warnings))

    def stream(
        self,
        model: LoadedModel,
        conversation_id: str | None,
        messages: Sequence[Message],
        params: GenParams,
        cancel: threading.Event,
    ) -> Iterator[Chunk]:
        """The answer's chunks, after restoring the conversation's saved model state, or that
        of an earlier prompt starting with the same tokens, when that spares re-reading them;
        restoring counts in the time to first token. A long prompt's state is kept once it is
        read, for the next prompt that starts the same way (prefix_cache.py). A server keeps
        its own cache: its answer is streamed as it comes."""
        if model.report.server is not None:
            yield from model.stream_chat(messages, params, cancel)
            return
        started = time.perf_counter()
        if conversation_id is not None:
            held = self._states.resume(model, conversation_id, messages, params.think)
        else:
            held = model.shared_prefix(messages, None, params.think)
        self._prefixes.resume(model, messages, params.think, held)
        restore_ms = (time.perf_counter() - started) * 1000
        first_read: int | None = None
        for chunk in model.stream_chat(messages, params, cancel):
            if isinstance(chunk, Completion) and chunk.timings.ttft_ms > 0:
                timings = replace(chunk.timings, ttft_ms=chunk.timings.ttft_ms + restore_ms)
                chunk = replace(chunk, timings=timings)
            yield chunk
            if isinstance(chunk, PromptProgress):
                # The first report says what was cached; at the last the model holds the
                # prompt and nothing more (it has not read its first answer token yet).
                if first_read is None:
                    first_read = chunk.read
                elif chunk.read == chunk.total and chunk.total - first_read >= LONG_PROMPT_TOKENS:
                    self._prefixes.remember(model)

    def keep_state(
        self,
        model: LoadedModel,
        conversation_id: str,
        answered: Sequence[Message],
        think: Think = Think.AUTO,
    ) -> None:
        """Save what the model has read of this conversation, for its next turn (in this
        process or another); call once the answer itself is saved, with the messages the
        next turn will continue (the prompt's, then the answer as the history holds it).

        What any next question's prompt starts with is read first (a few tokens, while the
        user reads the answer): continuing a long conversation then reads only the question.
        The disk write finishes in the background (see `flush_states`)."""
        model.read_ahead(answered, think)
        self._states.remember(model, conversation_id)

    def flush_states(self) -> None:
        self._states.flush()

    @staticmethod
    def _cut_last(
        model: LoadedModel, kept: list[Message], budget: int, tokens: int, think: Think
    ) -> tuple[Message, int, str]:
        last = kept[-1]
        overhead = model.count_prompt_tokens([*kept[:-1], replace(last, content="")], think)
        allowed = budget - overhead
        if allowed <= 0:
            raise UsageError(
                f"the system prompt alone needs {overhead} tokens of a {budget}-token budget:"
                " shorten it or raise --ctx"
            )
        shortened = replace(last, content=_cut_text(model, kept, allowed, overhead, think))
        new_tokens = model.count_prompt_tokens([*kept[:-1], shortened], think)
        warning = (
            f"the prompt was cut from {tokens} to {new_tokens} tokens to fit a context of"
            f" {model.report.n_ctx}"
        )
        return shortened, new_tokens, warning


def _cut_text(
    model: LoadedModel, kept: list[Message], allowed: int, overhead: int, think: Think
) -> str:
    """The last message's text in at most `allowed` tokens. A short last paragraph is kept
    whole and the text before it cut instead: `ask` puts the question after the piped text."""
    last = kept[-1]
    head, _, tail = last.content.rpartition("\n\n")
    if head:
        with_tail = [*kept[:-1], replace(last, content=tail)]
        tail_tokens = model.count_prompt_tokens(with_tail, think) - overhead
        # Tokens can merge differently where the two parts meet again.
        room = allowed - tail_tokens - 4
        if tail_tokens <= allowed // 4 and room > 0:
            cut = f"{model.truncate(head, room)}\n\n{tail}"
            cut_prompt = [*kept[:-1], replace(last, content=cut)]
            if model.count_prompt_tokens(cut_prompt, think) <= overhead + allowed:
                return cut
    return model.truncate(last.content, allowed)


def parse_think(text: str, where: str) -> Think:
    try:
        return Think(text.strip().lower())
    except ValueError:
        choices = ", ".join(think.value for think in Think)
        raise UsageError(f"{where}: expected one of {choices}, got {text!r}") from None


def parse_gpu_layers(text: str, where: str) -> GpuLayers:
    value = text.strip().lower()
    if value == "auto":
        return "auto"
    if value.lstrip("-").isdigit() and int(value) >= -1:
        return int(value)
    raise UsageError(f"{where}: expected auto or a number of layers, got {text!r}")
