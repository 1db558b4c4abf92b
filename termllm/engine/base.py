"""What the services need from an inference engine; llama.cpp is one implementation, a scripted
fake for tests is another."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from termllm.domain import Chunk, GenParams, Message, Think
from termllm.engine.thinking import ThinkControls
from termllm.setting_fields import KvCacheType, MemoryOptions

GpuLayers = int | Literal["auto"]


@dataclass(frozen=True)
class LoadRequest:
    model_path: Path
    """The GGUF to load (the first part of a split model)."""
    context_limit: int = 4096
    """The context used when `n_ctx` is None, unless the model was trained on less."""
    n_ctx: int | None = None
    """An explicit context size (--ctx): capped, with a warning, at the model's trained context
    (unless `beyond_trained`), and reduced when RAM cannot hold it."""
    beyond_trained: bool = False
    """Keep an `n_ctx` above the trained context: a model answers badly past it, unless its
    file says how to stretch it (RoPE scaling)."""
    gpu_layers: GpuLayers = "auto"
    """Layers to offload: "auto" fits them to free device memory; 0 keeps everything on the CPU."""
    threads: int | None = None
    """CPU threads for generation; None means the physical cores."""
    memory: MemoryOptions = field(default_factory=MemoryOptions)
    """The KV cache's type and flash attention."""
    chat_template: str | None = None
    """None: the model's own template; else a built-in format name or a path to a Jinja file."""
    log_file: Path | None = None
    """Where llama.cpp's native log goes; None leaves logging as it is."""


@dataclass(frozen=True)
class Placement:
    """Where the layers run, and why: the answer to "why is it running on my CPU?"."""

    gpu_layers: int
    """llama.cpp's `n_gpu_layers`: -1 for all, else the blocks offloaded plus the output layer."""
    total_layers: int
    device: str
    reason: str

    @property
    def blocks_on_gpu(self) -> int:
        """How many of the `total_layers` blocks run on the GPU, as people count layers."""
        if self.gpu_layers < 0 or self.gpu_layers > self.total_layers:
            return self.total_layers
        return max(0, self.gpu_layers - 1)


@dataclass(frozen=True)
class LoadReport:
    """What loading chose: visible with --verbose and in `doctor`."""

    n_ctx: int
    threads: int
    placement: Placement
    chat_template: str
    """The template in use: "gguf" (the model's own), a built-in name, or a file path."""
    load_ms: float
    warnings: tuple[str, ...] = field(default_factory=tuple)
    think_controls: ThinkControls = field(default_factory=ThinkControls)
    """The variables its chat template reads to steer reasoning (none: it cannot be)."""
    server: str | None = None
    """The configured server that runs the model (None: this machine). A server's `n_ctx` is
    0 where it does not say what context it serves."""
    kv_cache_type: KvCacheType = KvCacheType.F16
    flash_attention: bool = False
    """Whether attention runs as flash attention (`auto` resolved)."""


@dataclass(frozen=True)
class KvState:
    """What a model has read of a token sequence (its KV cache), to continue from it later
    without reading those tokens again. `data` is the engine's own serialization: made by the
    engine, or a view of a saved state's file mapped into memory (writable: private pages)."""

    tokens: tuple[int, ...]
    data: bytearray | memoryview

    @property
    def size_bytes(self) -> int:
        return len(self.data) + 4 * len(self.tokens)


@dataclass(frozen=True)
class SpeedTest:
    """Raw throughput, as llama-bench measures it: no sampling, no chat template."""

    prompt_tokens: int
    prompt_tokens_per_s: float
    generated_tokens: int
    decode_tokens_per_s: float


class LoadedModel(Protocol):
    @property
    def report(self) -> LoadReport: ...

    @property
    def state_identity(self) -> str:
        """What a saved KvState must have been made with to be restored into this model: the
        model file, the context settings and the engine version."""
        ...

    def count_prompt_tokens(self, messages: Sequence[Message], think: Think = Think.AUTO) -> int:
        """Tokens of the prompt these messages render to, generation prompt included, with the
        template steered by `think` (it can change the generation prompt)."""
        ...

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest start of `text` that fits in `max_tokens` tokens."""
        ...

    def stream_chat(
        self, messages: Sequence[Message], params: GenParams, cancel: threading.Event
    ) -> Iterator[Chunk]:
        """PromptProgress as the prompt is read, text chunks as they are generated (reasoning
        apart from the answer), then exactly one Completion.

        Setting `cancel` stops generation between tokens; the Completion then keeps the text so
        far with finish reason `cancelled`. Errors end the stream with finish reason `error`.
        """
        ...

    def shared_prefix(
        self, messages: Sequence[Message], tokens: Sequence[int] | None, think: Think = Think.AUTO
    ) -> int:
        """How many leading tokens of these messages' prompt `tokens` hold (None: the live KV
        cache, i.e. how much of the prompt needs no evaluation now)."""
        ...

    def read_ahead(self, messages: Sequence[Message], think: Think = Think.AUTO) -> int:
        """Read now what the prompt of any user turn after `messages` starts with beyond what
        the cache holds (the end of the last answer, the template's opening of a user turn),
        so that the next question reads only itself; how many tokens that was (0 when the
        cache is not the start of that prompt, e.g. a template that drops past reasoning)."""
        ...

    def save_state(self) -> KvState | None:
        """The live KV cache and the tokens it holds; None when this model's state cannot be
        continued from a prefix (recurrent models)."""
        ...

    def restore_state(self, state: KvState) -> bool:
        """Replace the live KV cache with `state`; False (and an empty cache) if the engine
        rejects it."""
        ...

    def clear_state(self) -> None:
        """Forget everything read so far: the next prompt is evaluated from its first token."""
        ...

    def speed_test(self, prompt_tokens: int, generated_tokens: int) -> SpeedTest:
        """Evaluate `prompt_tokens` tokens in batches, then decode `generated_tokens` one at a
        time; leaves the KV cache empty."""
        ...

    def close(self) -> None: ...


class Engine(Protocol):
    def load(self, request: LoadRequest) -> LoadedModel:
        """Load a model; raises ModelLoadError (a TermllmError) with a one-line reason."""
        ...
