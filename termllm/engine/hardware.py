"""What llama.cpp was built with and which devices ggml sees: for `doctor` and offload choices.

The device list comes from ggml's C API through ctypes, since llama-cpp-python binds none of it.
Every step that touches native code is fenced: a failure becomes a line in `errors` and the rest
of the report still comes back.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from termllm.engine.native_log import route_native_logs
from termllm.engine.system import SystemInfo, read_system_info
from termllm.errors import TermllmError

# Errors a broken or partial native install raises: a missing library or symbol, a bad load.
_NATIVE_ERRORS = (OSError, AttributeError, RuntimeError)
_BACKEND_LIBRARY = re.compile(r"^(?:lib)?ggml-(?P<name>[\w-]+)\.(?:so|dylib|dll)$")


class DeviceType(StrEnum):
    """Kinds of ggml device, in the order of `enum ggml_backend_dev_type`."""

    CPU = "cpu"
    GPU = "gpu"
    IGPU = "igpu"
    ACCEL = "accel"
    META = "meta"
    UNKNOWN = "unknown"


_DEVICE_TYPES = (DeviceType.CPU, DeviceType.GPU, DeviceType.IGPU, DeviceType.ACCEL, DeviceType.META)


@dataclass(frozen=True)
class Device:
    """One device ggml can run on."""

    name: str
    """ggml's name for it, e.g. "CPU" or "CUDA0"."""
    description: str
    """Hardware name, e.g. "NVIDIA H200" or the CPU model."""
    type: DeviceType
    memory_free_bytes: int
    """Free memory now. The CPU device reports all RAM as free; see SystemInfo for real figures."""
    memory_total_bytes: int


@dataclass(frozen=True)
class LlamaBuild:
    """The llama.cpp build that llama-cpp-python ships."""

    llama_cpp_version: str
    """llama-cpp-python's version."""
    ggml_version: str | None
    ggml_commit: str | None
    """llama.cpp commit the build came from; "unknown" when built without git metadata."""
    system_info: str
    """llama_print_system_info(): compiled-in CPU features per backend."""
    supports_gpu_offload: bool
    supports_mmap: bool
    supports_mlock: bool
    lib_dir: Path
    """Folder holding the shared libraries."""
    backend_libraries: tuple[str, ...]
    """Backend libraries shipped in lib_dir, e.g. ("cpu",) or ("cpu", "cuda")."""
    backends: tuple[str, ...]
    """Backends registered with ggml, e.g. ("CPU",) or ("CUDA", "CPU")."""


@dataclass(frozen=True)
class HardwareReport:
    """Everything the probe found; `errors` says what it could not find out and why."""

    system: SystemInfo
    build: LlamaBuild | None
    """None when llama_cpp itself cannot be imported."""
    devices: tuple[Device, ...]
    errors: tuple[str, ...]


def probe_hardware(log_file: Path) -> HardwareReport:
    """Describe the machine and the llama.cpp build, routing native logs to `log_file` first."""
    system = read_system_info()
    try:
        import llama_cpp
    except (ImportError, *_NATIVE_ERRORS) as exc:
        return HardwareReport(system, None, (), (f"llama_cpp cannot be imported: {exc}",))

    errors: list[str] = []
    try:
        route_native_logs(log_file)
    except TermllmError as exc:
        errors.append(str(exc))

    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    devices: tuple[Device, ...] = ()
    backends: tuple[str, ...] = ()
    ggml_version: str | None = None
    ggml_commit: str | None = None
    try:
        ggml = _Ggml(lib_dir)
        ggml.load_backends()
        backends = ggml.backend_names()
        devices = ggml.devices()
    except _NATIVE_ERRORS as exc:
        errors.append(f"ggml device API unavailable: {exc}")
    else:
        try:
            ggml_version, ggml_commit = ggml.version()
        except _NATIVE_ERRORS as exc:
            errors.append(f"ggml version unavailable: {exc}")

    build = LlamaBuild(
        llama_cpp_version=str(llama_cpp.__version__),
        ggml_version=ggml_version,
        ggml_commit=ggml_commit,
        system_info=_decode(llama_cpp.llama_print_system_info()).strip(),
        supports_gpu_offload=bool(llama_cpp.llama_supports_gpu_offload()),
        supports_mmap=bool(llama_cpp.llama_supports_mmap()),
        supports_mlock=bool(llama_cpp.llama_supports_mlock()),
        lib_dir=lib_dir,
        backend_libraries=_backend_libraries(lib_dir),
        backends=backends,
    )
    return HardwareReport(system, build, devices, tuple(errors))


def list_devices() -> tuple[Device, ...]:
    """The devices ggml sees, without the rest of the probe: what a model load plans with.

    Raises OSError, AttributeError or RuntimeError when the native device API is unavailable.
    """
    import llama_cpp

    ggml = _Ggml(Path(llama_cpp.__file__).parent / "lib")
    ggml.load_backends()
    return ggml.devices()


class _Ggml:
    """The few ggml C functions the probe calls, each bound with its C signature on first use."""

    def __init__(self, lib_dir: Path) -> None:
        self._lib_dir = lib_dir
        # The handle llama_cpp already holds (same path, so dlopen returns it). Symbol lookup
        # through it also searches libllama's dependencies, i.e. the libggml llama.cpp uses.
        # Opening lib/libggml.so by path instead would map a second copy with its own backend
        # registry: the wheel ships libggml.so and libggml.so.0 as separate files, and libllama
        # links the latter.
        self._libs = [ctypes.CDLL(str(_library(lib_dir, "llama")))]
        self._fallback = ["ggml", "ggml-base"]

    def load_backends(self) -> None:
        """Load backend libraries if this build links none in (GGML_BACKEND_DL builds)."""
        # From the package's folder only: ggml_backend_load_all() would also dlopen matching
        # files from the current directory. With one backend registered, llama_backend_init
        # loads no more.
        if self._reg_count() == 0:
            load = self._fn("ggml_backend_load_all_from_path", None, ctypes.c_char_p)
            load(str(self._lib_dir).encode())

    def backend_names(self) -> tuple[str, ...]:
        get = self._fn("ggml_backend_reg_get", ctypes.c_void_p, ctypes.c_size_t)
        name = self._fn("ggml_backend_reg_name", ctypes.c_char_p, ctypes.c_void_p)
        return tuple(_decode(name(get(i))) for i in range(self._reg_count()))

    def devices(self) -> tuple[Device, ...]:
        ptr, text, size_ptr = ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)
        count = self._fn("ggml_backend_dev_count", ctypes.c_size_t)
        get = self._fn("ggml_backend_dev_get", ptr, ctypes.c_size_t)
        name = self._fn("ggml_backend_dev_name", text, ptr)
        description = self._fn("ggml_backend_dev_description", text, ptr)
        dev_type = self._fn("ggml_backend_dev_type", ctypes.c_int, ptr)
        memory = self._fn("ggml_backend_dev_memory", None, ptr, size_ptr, size_ptr)
        found = []
        for i in range(int(count())):
            dev = get(i)
            free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
            memory(dev, ctypes.byref(free), ctypes.byref(total))
            kind = int(dev_type(dev))
            found.append(
                Device(
                    name=_decode(name(dev)),
                    description=_decode(description(dev)),
                    type=_DEVICE_TYPES[kind] if kind < len(_DEVICE_TYPES) else DeviceType.UNKNOWN,
                    memory_free_bytes=free.value,
                    memory_total_bytes=total.value,
                )
            )
        return tuple(found)

    def version(self) -> tuple[str, str]:
        version = self._fn("ggml_version", ctypes.c_char_p)
        commit = self._fn("ggml_commit", ctypes.c_char_p)
        return _decode(version()), _decode(commit())

    def _reg_count(self) -> int:
        return int(self._fn("ggml_backend_reg_count", ctypes.c_size_t)())

    def _fn(self, name: str, restype: Any, *argtypes: Any) -> Callable[..., Any]:
        while True:
            for lib in self._libs:
                try:
                    fn = lib[name]
                except AttributeError:
                    continue
                fn.restype = restype
                fn.argtypes = argtypes
                return fn
            if not self._fallback:
                raise AttributeError(f"{name} not found in the libraries in {self._lib_dir}")
            # Windows resolves no symbols through dependencies; there each DLL is one file.
            self._libs.append(ctypes.CDLL(str(_library(self._lib_dir, self._fallback.pop(0)))))


def _library(lib_dir: Path, base: str) -> Path:
    for name in (f"lib{base}.so", f"lib{base}.dylib", f"{base}.dll", f"lib{base}.dll"):
        if (lib_dir / name).exists():
            return lib_dir / name
    raise FileNotFoundError(f"no {base} library in {lib_dir}")


def _backend_libraries(lib_dir: Path) -> tuple[str, ...]:
    try:
        names = {m["name"] for p in lib_dir.iterdir() if (m := _BACKEND_LIBRARY.match(p.name))}
    except OSError:
        return ()
    return tuple(sorted(names - {"base"}))


def _decode(raw: object) -> str:
    # char* results arrive as bytes, or None for a NULL pointer.
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else ""
