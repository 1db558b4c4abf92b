"""Constructing `llama_cpp.Llama` without anything reaching the terminal or compiling the
model's chat templates, and turning a failed load into a one-line reason taken from llama.cpp's
own log (or, for a failed GGML_ASSERT, which ends the process, into one line on stderr)."""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from termllm.errors import ExitCode, ModelLoadError
from termllm.gguf.summary import KV_CACHE_GGML_TYPES
from termllm.safe_text import one_line
from termllm.setting_fields import MemoryOptions

if TYPE_CHECKING:
    from llama_cpp import Llama

N_BATCH = 512
"""Prompt tokens per decode call: cancelling waits for at most one such batch."""

_NATIVE_ERROR = re.compile(r"\berror\b|\bfailed\b", re.IGNORECASE)
_LOG_PREFIX = re.compile(r"^[\w.]+: (?:error[\w ]*: )?")
_REASON_CHARS = 300  # of a native error line, which can quote strings from the model file
# typedef void (*ggml_abort_callback_t)(const char * error_message), in ggml.h
_ABORT_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_char_p)


def construct_llama(
    path: Path,
    log_file: Path | None,
    n_ctx: int,
    gpu_layers: int,
    threads: int,
    memory: MemoryOptions,
) -> Llama:
    """`Llama(...)` with nothing reaching the terminal; a failure becomes ModelLoadError.
    K and V are kept in `memory`'s KV cache type, with flash attention as `memory.flash` says.

    verbose=False would make llama-cpp-python dup2 fds 1 and 2 away while it loads, blanking a
    TUI drawing from another thread. With verbose=True it print()s the metadata and system
    info instead, which a Python-level redirect catches; native logs go through the log
    callback that route_native_logs installed.
    """
    import llama_cpp

    mark = _log_size(log_file)
    captured = io.StringIO()
    try:
        with (
            contextlib.redirect_stdout(captured),
            contextlib.redirect_stderr(captured),
            _chat_handlers_skipped(),
            _aborts_reported(path),
            _utf8_path(path) as model_path,
        ):
            llama = llama_cpp.Llama(
                model_path=model_path,
                n_ctx=n_ctx,
                n_batch=N_BATCH,
                n_ubatch=N_BATCH,
                n_gpu_layers=gpu_layers,
                n_threads=threads,
                n_threads_batch=threads,
                type_k=KV_CACHE_GGML_TYPES[memory.kv_type],
                type_v=KV_CACHE_GGML_TYPES[memory.kv_type],
                flash_attn=memory.flash,
                verbose=True,
            )
    except Exception as exc:  # llama-cpp-python raises ValueError or RuntimeError, tersely
        native = _log_since(log_file, mark) + captured.getvalue()
        reason = _native_reason(native) or " ".join(str(exc).split())
        raise ModelLoadError(f"cannot load {path.name}: {reason}") from exc
    finally:
        _append_log(log_file, captured.getvalue())
    # From here on verbose only adds print()s to sys.stderr (cache hits, timings) per call.
    llama.verbose = False
    return llama


class _SkippedChatHandler:
    """Stands in for llama-cpp-python's Jinja2ChatFormatter while `Llama()` runs.

    The constructor compiles every template in the GGUF into a chat handler for
    create_chat_completion, which termllm never calls: it renders prompts itself, and a
    template that does not compile falls back to a built-in with a warning (templates.py).
    Compiled there, the same template would fail the whole load.
    """

    def __init__(self, **_: object) -> None:
        pass

    def to_chat_handler(self) -> Callable[..., NoReturn]:
        return _no_chat_completion


def _no_chat_completion(*_: object, **__: object) -> NoReturn:
    raise NotImplementedError("termllm renders chat prompts itself (termllm.engine.templates)")


class _ChatFormatView(ModuleType):
    """llama_chat_format as seen from llama_cpp.llama: the same, except the formatter class."""

    def __init__(self, real: ModuleType) -> None:
        super().__init__(real.__name__)
        self.real = real
        self.Jinja2ChatFormatter = _SkippedChatHandler

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


# Loads in one process are rare and already one at a time (the model slot): serializing the
# constructor keeps the swap below from ever being undone under another load.
_construct_lock = threading.Lock()


@contextlib.contextmanager
def _chat_handlers_skipped() -> Iterator[None]:
    """While `Llama()` runs, it compiles no chat template. The view replaces a global of
    llama_cpp.llama only, the name its code looks the formatter up through, so other code
    (templates.py among it) still gets the real formatter."""
    import llama_cpp.llama

    namespace = vars(llama_cpp.llama)
    with _construct_lock:
        real = namespace["llama_chat_format"]
        namespace["llama_chat_format"] = _ChatFormatView(real)
        try:
            yield
        finally:
            namespace["llama_chat_format"] = real


@contextlib.contextmanager
def _utf8_path(path: Path) -> Iterator[str]:
    """`path` as llama-cpp-python can hand it on, encoded to UTF-8: a file whose name holds
    bytes that are not UTF-8 (which Python keeps as lone surrogates) is reached through a
    descriptor of it instead, open while the model loads."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            yield f"/dev/fd/{descriptor}"
        finally:
            os.close(descriptor)
        return
    yield text


@contextlib.contextmanager
def _aborts_reported(path: Path) -> Iterator[None]:
    """While `Llama()` runs, a failed GGML_ASSERT ends the process with one line on stderr
    instead of ggml's report, a debugger backtrace printed to stdout.

    The header checks (termllm.gguf.hparams) stop the values known to trip an assert; this
    covers the others a hostile file can combine. Nothing can carry on after one: ggml aborts
    as soon as the callback returns, so the callback ends the process itself. Where the ggml
    library cannot be found, llama.cpp's own abort stays.
    """
    setter = _abort_callback_setter()
    if setter is None:
        yield
        return

    def report(message: bytes | None) -> None:
        # "path/ggml.c:4014: GGML_ASSERT(a->ne[0] == b->ne[0]) failed": the check is the news.
        check = (message or b"").decode("utf-8", "replace").split(": ", 1)[-1]
        line = f"termllm: cannot load {path.name}: llama.cpp failed a check on the file"
        os.write(2, f"{one_line(f'{line} ({check})', _REASON_CHARS)}\n".encode())
        os._exit(ExitCode.ERROR)

    callback = _ABORT_CALLBACK(report)  # referenced until restored: ggml keeps only its address
    previous = setter(callback)
    try:
        yield
    finally:
        setter(previous)


def _abort_callback_setter() -> Callable[[Any], Any] | None:
    import llama_cpp

    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    # Looked up through llama's library, so it is the ggml llama.cpp runs on: wheels can ship
    # two copies of ggml-base (libggml-base.so and .so.0), and setting the other does nothing.
    for name in ("libllama.so", "libllama.dylib", "llama.dll"):
        with contextlib.suppress(OSError, AttributeError):
            setter = ctypes.CDLL(str(lib_dir / name)).ggml_set_abort_callback
            setter.restype = _ABORT_CALLBACK
            setter.argtypes = [_ABORT_CALLBACK]
            return setter
    return None


def _native_reason(log_text: str) -> str | None:
    """The first error llama.cpp logged, without its function-name prefix.

    The first is the cause; later ones are callers reporting that they failed in turn.
    """
    for line in log_text.splitlines():
        if _NATIVE_ERROR.search(line):
            return one_line(_LOG_PREFIX.sub("", line.strip()), _REASON_CHARS) or None
    return None


def _log_size(log_file: Path | None) -> int:
    with contextlib.suppress(OSError):
        return log_file.stat().st_size if log_file is not None else 0
    return 0


def _log_since(log_file: Path | None, offset: int) -> str:
    with contextlib.suppress(OSError):
        if log_file is not None:
            with log_file.open("rb") as handle:
                handle.seek(offset)
                return handle.read().decode("utf-8", errors="replace")
    return ""


def _append_log(log_file: Path | None, text: str) -> None:
    if log_file is None or not text:
        return
    # The log is a diagnostic aid: failing to extend it must not fail the load.
    with contextlib.suppress(OSError), log_file.open("a", encoding="utf-8") as handle:
        handle.write(text)
