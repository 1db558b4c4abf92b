"""Plain values shared by every layer: model references and the models found on disk."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from termllm.model_files import model_stem


@dataclass(frozen=True)
class HubRef:
    """A model on the Hub: `owner/repo[@rev][:QUANT]` or `owner/repo[@rev]/path/file.gguf`."""

    repo_id: str
    revision: str | None = None
    quant: str | None = None
    filename: str | None = None

    def __str__(self) -> str:
        text = self.repo_id
        if self.revision:
            text += f"@{self.revision}"
        if self.filename:
            text += f"/{self.filename}"
        elif self.quant:
            text += f":{self.quant}"
        return text


@dataclass(frozen=True)
class PathRef:
    """A GGUF file named by its path on disk."""

    path: Path

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class NameRef:
    """A short name of a model already on disk (a file stem, a repo name, a listed ref)."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ServerRef:
    """A model of a configured OpenAI-compatible server: `@server/model-id`. The `@` is never
    the start of a Hub reference, a local name or a path, and the model id is kept whole (it
    may hold `/` and `:`, as vLLM's and Ollama's do)."""

    server: str
    model_id: str

    def __str__(self) -> str:
        return f"@{self.server}/{self.model_id}"


ModelRef = HubRef | PathRef | NameRef | ServerRef


class ModelSource(StrEnum):
    """Where a model on disk came from; decides whether termllm may delete it."""

    HUB = "hub"
    PACKAGE = "package"
    LOCAL = "local"
    SERVER = "server"
    """Not on disk: a model an OpenAI-compatible server lists."""


@dataclass(frozen=True)
class LocalModel:
    """A model present on disk. Split models are one entry whose `paths` lists every part."""

    ref: str
    paths: tuple[Path, ...]
    source: ModelSource
    size_bytes: int
    quant: str | None
    repo_id: str | None = None
    # The revision shown in `ref` when several snapshots of the repo are on disk.
    revision: str | None = None
    commit: str | None = None
    refs: tuple[str, ...] = ()
    last_used: float | None = None

    @property
    def path(self) -> Path:
        """The file llama.cpp loads: the first part of a split model."""
        return self.paths[0]

    @property
    def name(self) -> str:
        """The short name users type: the file stem without the split suffix."""
        return model_stem(self.path.name)


@dataclass(frozen=True)
class ServerModel:
    """A model served by an OpenAI-compatible server named in the config."""

    server: str
    model_id: str
    context_size: int | None = None
    """The context the server says it serves, when its listing says (vLLM, llama-server)."""

    @property
    def ref(self) -> str:
        return str(ServerRef(self.server, self.model_id))


ChosenModel = LocalModel | ServerModel
"""What a turn answers with: a file loaded here, or a model a server runs."""


class TransferProgress(Protocol):
    """Receives download progress; the CLI draws it, tests record it."""

    def begin(self, label: str, total_bytes: int, done_bytes: int) -> None:
        """A file starts; `done_bytes` is what an earlier, interrupted run already fetched."""

    def advance(self, n_bytes: int) -> None:
        """`n_bytes` more arrived for the current file."""

    def end(self) -> None:
        """The current file is complete and verified."""


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass(frozen=True)
class Message:
    role: Role
    content: str
    reasoning: str | None = None
    """What a thinking model reasoned before this answer, apart from it: a template that reads
    past reasoning (as `reasoning_content` or `thinking`) gets it there, and decides."""


class Think(StrEnum):
    """How much a thinking model should reason: `auto` leaves it to the model's template."""

    AUTO = "auto"
    ON = "on"
    OFF = "off"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class GenParams:
    """Sampling settings for one answer; the defaults suit chat with small local models."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    seed: int | None = None
    max_tokens: int | None = None
    """None: until the model stops or the context is full."""
    think: Think = Think.AUTO
    think_budget: int | None = None
    """Reasoning tokens after which the reasoning is closed, as the model would close it, so
    that the answer comes; None: no limit."""


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"
    CANCELLED = "cancelled"
    ERROR = "error"


@dataclass(frozen=True)
class Usage:
    """Token counts; None where they are not known (a server that does not report usage)."""

    prompt_tokens: int | None
    completion_tokens: int | None
    """Every token generated, reasoning included."""
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class Timings:
    """Where the time of one answer went; `load_ms` is 0 when the model was already loaded."""

    load_ms: float
    ttft_ms: float
    prompt_tokens_per_s: float
    decode_tokens_per_s: float
    cached_tokens: int = 0
    """Prompt tokens taken from the KV cache (live or restored) instead of being evaluated."""


@dataclass(frozen=True)
class TextChunk:
    """A piece of the answer, or of the reasoning before it, as it is generated."""

    text: str
    reasoning: bool = False


@dataclass(frozen=True)
class PromptProgress:
    """How much of the prompt the model has read: `read` of `total` tokens, those taken from
    the KV cache included. A stream reports it when reading starts, after each batch of a long
    prompt, and once the prompt is read (`read == total`)."""

    read: int
    total: int


@dataclass(frozen=True)
class Completion:
    """The end of an answer: always the last item of a stream, also after a cancel or error."""

    content: str
    """The answer, without the reasoning."""
    finish_reason: FinishReason
    usage: Usage
    timings: Timings
    error: str | None = None
    reasoning: str = ""
    server_failed: bool = False
    """The error was a server's, or the network's on the way to it (exit code 4 in `ask`)."""

    @property
    def ended_thinking(self) -> bool:
        """It ended (out of tokens, cancelled) while still reasoning, before any answer."""
        return (
            bool(self.reasoning)
            and not self.content
            and self.finish_reason is not FinishReason.STOP
        )


Chunk = TextChunk | PromptProgress | Completion
