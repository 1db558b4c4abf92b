"""llama.cpp through llama-cpp-python: the only code that constructs `llama_cpp.Llama`.

Prompts are read with `Llama.eval`, in batches, and each generated token costs one decode, one
native sampler call (termllm.engine.decoding), one piece lookup, an incremental UTF-8 decode
and a stop check: neither `create_completion`, which re-detokenizes the whole answer on every
token, nor `Llama.generate`, whose sampler took 280 µs a token with the starter model against
100 µs here. Prompts go in as tokens to the same `Llama` object, so its KV cache keeps the
prefix shared with the last turn.
"""

from __future__ import annotations

import codecs
import ctypes
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING

from termllm.domain import (
    Chunk,
    Completion,
    FinishReason,
    GenParams,
    Message,
    PromptProgress,
    Role,
    TextChunk,
    Think,
    Timings,
    Usage,
)
from termllm.engine import decoding, kv_state
from termllm.engine.base import KvState, LoadReport, LoadRequest, SpeedTest
from termllm.engine.construct import N_BATCH, construct_llama
from termllm.engine.native_log import route_native_logs
from termllm.engine.planning import plan_load
from termllm.engine.templates import ChatTemplate, Vocabulary, select_template
from termllm.engine.thinking import template_controls, think_variables
from termllm.errors import StorageError, TermllmError
from termllm.reasoning import (
    HarmonyFormat,
    Kind,
    Piece,
    ReasoningFormat,
    ReasoningParser,
    detect_format,
)
from termllm.safe_text import one_line

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import numpy.typing as npt
    from llama_cpp import Llama


# A user message whose end marks where the generation prompt starts in a rendered prompt.
_PROBE = "termllm probe: where does the answer start?"
_NEXT_QUESTIONS = ("a", "b")
"""Two questions whose prompts share exactly what every next user turn starts with."""
READ_AHEAD_TOKENS = 32
"""The most tokens read ahead of a next turn: a template opens a user turn in a few (ChatML in
5, the last answer's end included), and the reading cannot be cancelled."""


class LlamaEngine:
    """Loads GGUF models with llama.cpp, choosing context, threads and GPU layers to fit."""

    def __init__(self) -> None:
        # Native logs that could not be written, warned about once each.
        self._logs_refused: set[Path] = set()

    def load(self, request: LoadRequest) -> LlamaModel:
        started = time.perf_counter()
        warnings: list[str] = []
        if request.log_file is not None:
            try:
                route_native_logs(request.log_file)
            except StorageError as err:
                # The log only helps to diagnose: the model loads without it.
                if request.log_file not in self._logs_refused:
                    self._logs_refused.add(request.log_file)
                    warnings.append(f"{err.message}; llama.cpp's messages are dropped")
        plan = plan_load(request)
        summary, n_ctx, threads, placement = plan.summary, plan.n_ctx, plan.threads, plan.placement
        memory = plan.memory
        warnings += plan.warnings

        llama = construct_llama(
            request.model_path, request.log_file, n_ctx, placement.gpu_layers, threads, memory
        )
        # llama.cpp may round the context up (to a multiple of 256), but llama-cpp-python sizes
        # its token buffer to the n_ctx asked for: the smaller is the real limit.
        n_ctx = min(n_ctx, llama.n_ctx())
        try:
            vocab = _vocabulary(llama)
            template, warning = select_template(
                request.chat_template, summary, request.model_path.name, vocab
            )
        except BaseException:
            llama.close()
            raise
        if warning is not None:
            warnings.append(warning)
        load_ms = (time.perf_counter() - started) * 1000
        report = LoadReport(
            n_ctx,
            threads,
            placement,
            template.label,
            load_ms,
            tuple(warnings),
            think_controls=template_controls(template.source),
            kv_cache_type=memory.kv_type,
            flash_attention=memory.flash,
        )
        identity = kv_state.state_identity(request.model_path, n_ctx, memory)
        return LlamaModel(llama, template, report, identity)


class LlamaModel:
    """A loaded model; one conversation streams at a time."""

    def __init__(
        self, llama: Llama, template: ChatTemplate, report: LoadReport, state_identity: str
    ) -> None:
        import llama_cpp

        self._llama = llama
        self._state_identity = state_identity
        self._last_prompt: tuple[tuple[tuple[Message, ...], Think], list[int]] | None = None
        self._template = template
        self._reasoning_formats: dict[Think, ReasoningFormat] = {}
        self._report = report
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._bos = int(llama.token_bos())
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab)) and self._bos >= 0
        # Markers that are one token are matched as tokens (they detokenize to nothing);
        # the others as text, since the model writes them piece by piece.
        single = {stop: self._single_token(stop) for stop in template.stops}
        self._stop_ids = frozenset(token for token in single.values() if token is not None)
        self._stop_texts = tuple(stop for stop, token in single.items() if token is None)
        model = llama.model
        # Recurrent state cannot be cut back to a prefix, so chunked prefill would corrupt it.
        self._recurrent = bool(
            llama_cpp.llama_model_is_recurrent(model) or llama_cpp.llama_model_is_hybrid(model)
        )
        self._token_to_piece = llama_cpp.llama_token_to_piece
        self._piece_buffer = ctypes.create_string_buffer(64)

    @property
    def report(self) -> LoadReport:
        return self._report

    @property
    def state_identity(self) -> str:
        return self._state_identity

    def count_prompt_tokens(self, messages: Sequence[Message], think: Think = Think.AUTO) -> int:
        return len(self._prompt_tokens(messages, think))

    def shared_prefix(
        self, messages: Sequence[Message], tokens: Sequence[int] | None, think: Think = Think.AUTO
    ) -> int:
        import numpy as np

        prompt = self._prompt_tokens(messages, think)
        if tokens is None:
            return _common_prefix(self._llama.input_ids, self._llama.n_tokens, prompt)
        return _common_prefix(np.asarray(tokens, dtype=np.intc), len(tokens), prompt)

    def read_ahead(self, messages: Sequence[Message], think: Think = Think.AUTO) -> int:
        import numpy as np

        if self._recurrent:
            return 0
        llama = self._llama
        held = llama.n_tokens
        first, second = (
            self._prompt_tokens([*messages, Message(Role.USER, question)], think)
            for question in _NEXT_QUESTIONS
        )
        opening = _common_prefix(np.asarray(first, dtype=np.intc), len(first), second)
        # Room is left for the question and one token of answer, or reading it is wasted.
        end = min(opening, held + READ_AHEAD_TOKENS, self._report.n_ctx - 2)
        if end <= held or _common_prefix(llama.input_ids, held, first) < held:
            return 0
        try:
            llama.eval(first[held:end])
        except RuntimeError:
            # Nothing is lost: the cache is cut back to what it held, and the next turn reads
            # these tokens itself.
            self._keep_prefix(held)
            return 0
        return end - held

    def save_state(self) -> KvState | None:
        return None if self._recurrent else kv_state.save(self._llama)

    def restore_state(self, state: KvState) -> bool:
        return False if self._recurrent else kv_state.restore(self._llama, state)

    def clear_state(self) -> None:
        kv_state.clear(self._llama)

    def speed_test(self, prompt_tokens: int, generated_tokens: int) -> SpeedTest:
        return decoding.speed_test(self._llama, prompt_tokens, generated_tokens)

    def truncate(self, text: str, max_tokens: int) -> str:
        tokens = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if len(tokens) <= max_tokens:
            return text
        kept = b"".join(self._piece(token) for token in tokens[: max(max_tokens, 0)])
        # A cut inside a multi-byte character drops the partial character.
        head = kept.decode("utf-8", errors="ignore")
        if text.startswith(head):
            return head
        # Tokenizers that add a leading space (SentencePiece) give it back on the first piece.
        if head.startswith(" ") and text.startswith(head[1:]):
            return head[1:]
        return text[: len(head)]

    def stream_chat(
        self, messages: Sequence[Message], params: GenParams, cancel: threading.Event
    ) -> Iterator[Chunk]:
        started = time.perf_counter()
        try:
            prompt = self._prompt_tokens(messages, params.think)
            reasoning = self._reasoning_format(params.think)
        except TermllmError as exc:
            yield _failed(str(exc), 0)
            return
        if not prompt:  # a template may render nothing, and a vocabulary add no BOS
            yield _failed("the chat template rendered an empty prompt", 0)
            return
        n_ctx = self._report.n_ctx
        if len(prompt) >= n_ctx:
            # The service trims history to fit; a prompt that still does not leave room for
            # one token of answer is an error to report, not something to crash on.
            error = f"the prompt is {len(prompt)} tokens; the context holds {n_ctx}"
            yield _failed(error, len(prompt))
            return
        room = n_ctx - len(prompt)
        limit = room if params.max_tokens is None else min(params.max_tokens, room)
        yield from self._generate(prompt, params, cancel, started, limit, reasoning)

    def close(self) -> None:
        self._llama.close()

    def _generate(
        self,
        prompt: list[int],
        params: GenParams,
        cancel: threading.Event,
        started: float,
        limit: int,
        reasoning: ReasoningFormat,
    ) -> Iterator[Chunk]:
        import llama_cpp

        llama = self._llama
        # The last prompt token is evaluated even when the cache holds it: its logits, which
        # the next token is drawn from, may be another prompt's (after a restore, a cut).
        reused = self._keep_prefix(
            min(_common_prefix(llama.input_ids, llama.n_tokens, prompt), len(prompt) - 1)
        )
        evaluated = len(prompt) - reused
        # The hot loop below reads only locals.
        is_eog, vocab, piece = llama_cpp.llama_vocab_is_eog, self._vocab, self._piece
        stop_ids, stop_texts = self._stop_ids, self._stop_texts
        decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        # Harmony's channels are special tokens: without their text the channels run together.
        special = isinstance(reasoning, HarmonyFormat)
        parser = ReasoningParser(reasoning)
        feed = parser.feed
        answer: list[str] = []
        thought: list[str] = []
        held = ""
        finish, error = FinishReason.LENGTH, None
        sampled = produced = reasoning_tokens = 0
        budget = params.think_budget
        # Tokens of the answer not evaluated yet: the last one sampled, and any written for it.
        pending: list[int] = []
        eval_started = first = last = time.perf_counter()
        sampler = step = None
        total = len(prompt)
        yield PromptProgress(reused, total)
        try:
            prefilled = yield from self._prefill(prompt, cancel)
            if not prefilled:
                finish = FinishReason.CANCELLED
            else:
                llama.eval(prompt[llama.n_tokens :])
                sampler = decoding.Sampler(llama, params)
                step = decoding.TokenStep(llama)
                sample = sampler.sample
                while sampled < limit:
                    if cancel.is_set():
                        finish = FinishReason.CANCELLED
                        break
                    if budget is not None and reasoning_tokens >= budget and parser.in_reasoning:
                        # The budget is spent: the reasoning is closed as the model would close
                        # it, and sampling goes on from there, so that the answer still comes.
                        budget = None
                        closing = self._llama.tokenize(
                            reasoning.close_text.encode("utf-8"), add_bos=False, special=True
                        )
                        for token in closing:
                            sampler.accept(token)
                        pending += closing
                        produced += len(closing)
                        reasoning_tokens += len(closing)
                        limit -= len(closing)
                        yield from _kept(feed(reasoning.close_text), thought, answer)
                        continue
                    if len(pending) == 1:
                        step(pending[0])
                    elif pending:
                        llama.eval(pending)
                    token = sample()
                    last = time.perf_counter()
                    sampled += 1
                    if sampled == 1:
                        first = last
                        yield PromptProgress(total, total)
                    if token in stop_ids or is_eog(vocab, token):
                        finish = FinishReason.STOP
                        break
                    produced += 1
                    pending = [token]
                    was_reasoning = parser.in_reasoning
                    text = decode(piece(token, special))
                    stopped = False
                    if stop_texts and text:
                        text, held, stopped = _hold_back(held + text, stop_texts)
                    if text:
                        yield from _kept(feed(text), thought, answer)
                    if was_reasoning or parser.in_reasoning:
                        reasoning_tokens += 1
                    if stopped:
                        finish = FinishReason.STOP
                        break
        except Exception as exc:  # a failed llama_decode surfaces as a plain RuntimeError
            # The reason alone: front ends say that generation failed. Some carry no message.
            finish, error = FinishReason.ERROR, one_line(str(exc), 300) or type(exc).__name__
        finally:
            if sampler is not None:
                sampler.close()
            if step is not None:
                step.close()
        # What looked like the start of a stop marker was not one after all.
        rest = feed(held) if held and finish is not FinishReason.STOP else []
        yield from _kept([*rest, *parser.finish()], thought, answer)
        timings = Timings(
            load_ms=0.0,
            ttft_ms=(first - started) * 1000 if sampled else 0.0,
            prompt_tokens_per_s=evaluated / (first - eval_started) if sampled else 0.0,
            decode_tokens_per_s=(sampled - 1) / (last - first) if sampled > 1 else 0.0,
            cached_tokens=reused,
        )
        usage = Usage(len(prompt), produced, reasoning_tokens)
        yield Completion("".join(answer), finish, usage, timings, error, "".join(thought).rstrip())

    def _keep_prefix(self, n_tokens: int) -> int:
        """Drop what the cache holds after its first `n_tokens`; how many it keeps (all of
        them, or none for a recurrent state, which cannot be cut back)."""
        import llama_cpp

        llama = self._llama
        memory = llama_cpp.llama_get_memory(llama.ctx)
        if n_tokens == 0 or not llama_cpp.llama_memory_seq_rm(
            memory, kv_state.SEQUENCE, n_tokens, -1
        ):
            kv_state.clear(llama)
            return 0
        llama.n_tokens = n_tokens
        return n_tokens

    def _prefill(
        self, prompt: list[int], cancel: threading.Event
    ) -> Generator[PromptProgress, None, bool]:
        """Evaluate all but the last prompt token one batch at a time, saying how far it got
        after each; returns False when cancelled.

        One `Llama.eval` of a whole long prompt, which no flag can interrupt, takes many seconds
        on a CPU. Prompts that leave at most one batch to read are read in one call after this.
        """
        llama = self._llama
        end = len(prompt) - 1
        if self._recurrent or end - llama.n_tokens <= N_BATCH:
            return not cancel.is_set()
        for start in range(llama.n_tokens, end, N_BATCH):
            if cancel.is_set():
                return False
            stop = min(start + N_BATCH, end)
            llama.eval(prompt[start:stop])
            yield PromptProgress(stop, len(prompt))
        return not cancel.is_set()

    def _prompt_tokens(self, messages: Sequence[Message], think: Think) -> list[int]:
        """The prompt's tokens (not to be modified). A turn asks for the same prompt several
        times (fitting it, comparing it with saved states, generating), so the last one is
        kept rather than rendered and tokenized again."""
        key = (tuple(messages), think)
        if self._last_prompt is not None and self._last_prompt[0] == key:
            return self._last_prompt[1]
        text = self._template.render(messages, self._think_variables(think))
        # Templates write their special tokens as text (bos_token included), so they are
        # parsed as special here and BOS is added only when the template left it out.
        tokens: list[int] = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if self._add_bos and tokens[:1] != [self._bos]:
            tokens.insert(0, self._bos)
        self._last_prompt = (key, tokens)
        return tokens

    def _think_variables(self, think: Think) -> dict[str, object]:
        return think_variables(self._report.think_controls, think)[0]

    def _reasoning_format(self, think: Think) -> ReasoningFormat:
        """How this model's output carries its reasoning, from its template and how the
        generation prompt ends with `think` applied (it may open the reasoning itself)."""
        known = self._reasoning_formats.get(think)
        if known is None:
            probe = self._template.render(
                [Message(Role.USER, _PROBE)], self._think_variables(think)
            )
            tail = probe[probe.rfind(_PROBE) + len(_PROBE) :] if _PROBE in probe else ""
            known = self._reasoning_formats[think] = detect_format(self._template.source, tail)
        return known

    def _piece(self, token: int, special: bool = False) -> bytes:
        buffer = self._piece_buffer
        size = self._token_to_piece(self._vocab, token, buffer, len(buffer), 0, special)
        if size < 0:  # the piece needs -size bytes
            self._piece_buffer = buffer = ctypes.create_string_buffer(-size)
            size = self._token_to_piece(self._vocab, token, buffer, -size, 0, special)
        return buffer.raw[:size]

    def _single_token(self, text: str) -> int | None:
        tokens = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        return int(tokens[0]) if len(tokens) == 1 else None


def _vocabulary(llama: Llama) -> Vocabulary:
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llama.model)

    def text(token: int) -> str:
        raw = llama_cpp.llama_vocab_get_text(vocab, token) if token >= 0 else None
        return raw.decode("utf-8", errors="replace") if raw else ""

    def is_special_token(marker: str) -> bool:
        return len(llama.tokenize(marker.encode("utf-8"), add_bos=False, special=True)) == 1

    return Vocabulary(
        bos_token=text(llama.token_bos()),
        eos_token=text(llama.token_eos()),
        is_special_token=is_special_token,
    )


def _kept(pieces: list[Piece], thought: list[str], answer: list[str]) -> Iterator[TextChunk]:
    """The parser's pieces as chunks, each also kept in the text of its kind."""
    for kind, text in pieces:
        reasoning = kind is Kind.REASONING
        (thought if reasoning else answer).append(text)
        yield TextChunk(text, reasoning)


def _common_prefix(cached: npt.NDArray[np.intc], n_cached: int, tokens: list[int]) -> int:
    """How many leading tokens the KV cache already holds."""
    import numpy as np

    n = min(n_cached, len(tokens))
    if n == 0:
        return 0
    differ = np.flatnonzero(cached[:n] != np.asarray(tokens[:n], dtype=cached.dtype))
    return int(differ[0]) if differ.size else n


def _hold_back(text: str, stops: tuple[str, ...]) -> tuple[str, str, bool]:
    """Split `text` into what can be shown and what may begin a stop marker.

    Returns (shown, held, stopped); when a marker is complete, `shown` ends before it.
    """
    found = [at for at in (text.find(stop) for stop in stops) if at >= 0]
    if found:
        return text[: min(found)], "", True
    keep = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), keep, -1):
            if text.endswith(stop[:size]):
                keep = size
                break
    return text[: len(text) - keep], text[len(text) - keep :], False


def _failed(error: str, prompt_tokens: int) -> Completion:
    timings = Timings(load_ms=0.0, ttft_ms=0.0, prompt_tokens_per_s=0.0, decode_tokens_per_s=0.0)
    return Completion("", FinishReason.ERROR, Usage(prompt_tokens, 0), timings, error)
