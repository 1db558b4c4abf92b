"""A model an OpenAI-compatible server runs, behind the same protocol as a loaded GGUF.

The server keeps the model and its KV cache: there is no state to save here, the prompt is
counted by the server, and the usage and context are what the server reports, or unknown.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from termllm.domain import (
    Chunk,
    Completion,
    FinishReason,
    GenParams,
    Message,
    TextChunk,
    Think,
    Timings,
    Usage,
)
from termllm.engine.base import KvState, LoadReport, Placement, SpeedTest
from termllm.errors import ServerError, TermllmError, UsageError
from termllm.reasoning import THINK, Kind, ReasoningParser
from termllm.remote.client import ChatStream, ServerClient, UnknownServerModel
from termllm.safe_text import one_line

_POLL_S = 0.1
"""How often a wait for the server's next bytes looks at the cancel flag."""
_FINISHES = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH}
_COMPLETE: dict[str, Any] = {}
"""Stands in the stream for the server's `[DONE]`."""


class ServerModelSession:
    """One server model, ready to answer (nothing is loaded: `load_ms` is the listing's)."""

    def __init__(
        self,
        client: ServerClient,
        model_id: str,
        context_size: int | None,
        connect_ms: float,
        warnings: tuple[str, ...] = (),
    ) -> None:
        self._client = client
        self._model_id = model_id
        server = client.server
        self._report = LoadReport(
            n_ctx=context_size or 0,
            threads=0,
            placement=Placement(0, 0, f"server {server.name}", f"{server.name} runs the model"),
            chat_template="the server's",
            load_ms=connect_ms,
            warnings=warnings,
            server=server.name,
        )

    @property
    def report(self) -> LoadReport:
        return self._report

    @property
    def state_identity(self) -> str:
        return f"server|{self._client.server.name}|{self._model_id}"

    def count_prompt_tokens(self, messages: Sequence[Message], think: Think = Think.AUTO) -> int:
        raise UsageError("a server model's prompt is counted by the server")

    def truncate(self, text: str, max_tokens: int) -> str:
        return text

    def shared_prefix(
        self, messages: Sequence[Message], tokens: Sequence[int] | None, think: Think = Think.AUTO
    ) -> int:
        return 0

    def read_ahead(self, messages: Sequence[Message], think: Think = Think.AUTO) -> int:
        return 0

    def save_state(self) -> KvState | None:
        return None

    def restore_state(self, state: KvState) -> bool:
        return False

    def clear_state(self) -> None:
        """The server manages its own cache."""

    def speed_test(self, prompt_tokens: int, generated_tokens: int) -> SpeedTest:
        raise UsageError("a server model's raw speed is measured by answering (termllm bench)")

    def close(self) -> None:
        self._client.close()

    def stream_chat(
        self, messages: Sequence[Message], params: GenParams, cancel: threading.Event
    ) -> Iterator[Chunk]:
        started = time.perf_counter()
        answer: list[str] = []
        thought: list[str] = []
        parser = ReasoningParser(THINK)
        finish, error = FinishReason.ERROR, None
        usage = Usage(None, None)
        first = last = 0.0
        pieces = 0
        try:
            for item in self._objects(_payload(self._model_id, messages, params), cancel):
                if item is None:
                    finish = FinishReason.CANCELLED
                    break
                if item is _COMPLETE:
                    if finish is FinishReason.ERROR:
                        finish = FinishReason.STOP
                    continue
                usage = _usage(item.get("usage"), usage)
                choices = item.get("choices")
                choice = choices[0] if isinstance(choices, list) and choices else None
                if not isinstance(choice, dict):
                    continue
                for kind, text in _delta_pieces(choice.get("delta"), parser):
                    if not text:
                        continue
                    last = time.perf_counter()
                    if not pieces:
                        first = last
                    pieces += 1
                    (thought if kind is Kind.REASONING else answer).append(text)
                    yield TextChunk(text, reasoning=kind is Kind.REASONING)
                said = choice.get("finish_reason")
                if isinstance(said, str):
                    finish = _FINISHES.get(said, FinishReason.STOP)
            else:
                if finish is FinishReason.ERROR:
                    error = (
                        f"the stream from server '{self._client.server.name}' ended before"
                        " the answer did"
                    )
        except UnknownServerModel as err:
            finish, error = FinishReason.ERROR, self._with_listing(err)
        except TermllmError as err:
            finish, error = FinishReason.ERROR, err.message
        for piece in parser.finish():
            (thought if piece.kind is Kind.REASONING else answer).append(piece.text)
            yield TextChunk(piece.text, reasoning=piece.kind is Kind.REASONING)
        decoded = usage.completion_tokens
        timings = Timings(
            load_ms=0.0,
            ttft_ms=(first - started) * 1000 if pieces else 0.0,
            prompt_tokens_per_s=0.0,
            decode_tokens_per_s=(
                (decoded - 1) / (last - first) if decoded and decoded > 1 and last > first else 0.0
            ),
        )
        yield Completion(
            "".join(answer),
            finish,
            usage,
            timings,
            error,
            "".join(thought).strip(),
            server_failed=error is not None,
        )

    def _objects(
        self, payload: dict[str, Any], cancel: threading.Event
    ) -> Iterator[dict[str, Any] | None]:
        """The stream's objects, read on a thread of their own so that a cancel is seen while
        the server is still silent (reading a long prompt); None when cancelled. Leaving
        closes the response, which is how a server learns to stop generating."""
        found: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=256)
        stop = threading.Event()
        closed = threading.Event()
        opened: list[ChatStream] = []

        def read() -> None:
            try:
                with self._client.chat(payload) as stream:
                    opened.append(stream)
                    for item in stream.objects():
                        if stop.is_set():
                            return
                        found.put(("item", item))
                    found.put(("end", stream.done))
            except TermllmError as err:
                if not stop.is_set():
                    found.put(("error", err))
            except Exception as err:  # an httpx2 error the client did not map, or a closed socket
                if not stop.is_set():
                    found.put(("error", ServerError(_unexpected(self._client, err))))
            finally:
                closed.set()

        reader = threading.Thread(target=read, name="termllm-server-stream", daemon=True)
        reader.start()
        try:
            while True:
                if cancel.is_set():
                    yield None
                    return
                try:
                    kind, value = found.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if kind == "item":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    if value:
                        yield _COMPLETE
                    return
        finally:
            stop.set()
            if not closed.is_set():
                # Cutting the connection under the reader is what stops the server.
                for stream in opened:
                    stream.abort()
                self._client.close()
                # A reader blocked on a full queue: leave it room to see `stop`. One still
                # waiting for the response's headers cannot be woken: it ends on its own
                # (at the server's first byte or the timeout), with nothing left to read it.
                while opened and not closed.wait(_POLL_S):
                    with contextlib.suppress(queue.Empty):
                        found.get_nowait()
                self._client.reopen()

    def _with_listing(self, err: UnknownServerModel) -> str:
        try:
            listed = self._client.list_models()
        except TermllmError:
            return err.message
        names = ", ".join(one_line(model.model_id, 60) for model in listed[:10]) or "none"
        return f"{err.message}; it has: {names}"


def _payload(model_id: str, messages: Sequence[Message], params: GenParams) -> dict[str, Any]:
    """The request: the OpenAI API's sampling fields, and llama.cpp's and vLLM's own (top_k,
    min_p, repeat_penalty), which servers without them ignore."""
    payload: dict[str, Any] = {
        "model": model_id,
        "messages": [{"role": m.role.value, "content": m.content} for m in messages],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k,
        "min_p": params.min_p,
        "repeat_penalty": params.repeat_penalty,
    }
    if params.max_tokens is not None:
        payload["max_tokens"] = params.max_tokens
    if params.seed is not None:
        payload["seed"] = params.seed
    if params.think in (Think.ON, Think.OFF):
        payload["chat_template_kwargs"] = {"enable_thinking": params.think is Think.ON}
    elif params.think in (Think.LOW, Think.MEDIUM, Think.HIGH):
        payload["reasoning_effort"] = params.think.value
    return payload


def _delta_pieces(delta: Any, parser: ReasoningParser) -> list[tuple[Kind, str]]:
    """Reasoning a server parsed itself (`reasoning_content`, or `reasoning` as vLLM and
    Ollama name it), then the content, where a `<think>` block the server left inline is
    told apart."""
    if not isinstance(delta, dict):
        return []
    pieces: list[tuple[Kind, str]] = []
    for key in ("reasoning_content", "reasoning"):
        reasoning = delta.get(key)
        if isinstance(reasoning, str) and reasoning:
            pieces.append((Kind.REASONING, reasoning))
            break
    content = delta.get("content")
    if isinstance(content, str) and content:
        pieces.extend((piece.kind, piece.text) for piece in parser.feed(content))
    return pieces


def _usage(reported: Any, known: Usage) -> Usage:
    if not isinstance(reported, dict):
        return known
    prompt = _count(reported.get("prompt_tokens"))
    completion = _count(reported.get("completion_tokens"))
    details = reported.get("completion_tokens_details")
    reasoning = _count(details.get("reasoning_tokens")) if isinstance(details, dict) else None
    return Usage(prompt, completion, reasoning or 0)


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _unexpected(client: ServerClient, err: Exception) -> str:
    return (
        f"the answer from server '{client.server.name}' broke off:"
        f" {one_line(str(err), 120) or type(err).__name__}"
    )
