"""The hardware probe and native log routing, against the real llama.cpp build in the venv."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from termllm.engine import hardware
from termllm.engine.hardware import DeviceType, HardwareReport, probe_hardware
from termllm.engine.native_log import route_native_logs
from termllm.errors import StorageError

ROOT = Path(__file__).resolve().parents[2]
HEADER = b"--- termllm native log"

PROBE = """
import sys
from pathlib import Path
from termllm.engine.hardware import probe_hardware
report = probe_hardware(Path(sys.argv[1]))
assert report.devices and not report.errors, report
"""

# ggml_backend_load logs its failure through ggml's own logger, not llama.cpp's: this shows
# that llama_log_set routes ggml messages too.
GGML_LOG = """
import ctypes, sys
from pathlib import Path
from termllm.engine.native_log import route_native_logs
route_native_logs(Path(sys.argv[1]))
import llama_cpp
lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libllama.so"))
lib.ggml_backend_load.restype = ctypes.c_void_p
lib.ggml_backend_load.argtypes = [ctypes.c_char_p]
assert lib.ggml_backend_load(b"/nonexistent/libggml-nothing.so") is None
"""

LOAD_MODEL = """
import contextlib, io, sys
from pathlib import Path
from termllm.engine.native_log import route_native_logs
route_native_logs(Path(sys.argv[2]), debug=sys.argv[3] == "debug")
import llama_cpp
# verbose=True keeps llama-cpp-python from dup2'ing fds 1 and 2, but it then prints the model's
# metadata with Python's print(). Only native output is under test, so that text is set aside.
with contextlib.redirect_stderr(io.StringIO()):
    llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, verbose=True)
llm.close()
"""


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, timeout=120
    )


@pytest.fixture(scope="module")
def probe_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("probe") / "logs" / "native.log"


@pytest.fixture(scope="module")
def report(probe_log: Path) -> HardwareReport:
    return probe_hardware(probe_log)


def test_probe_reports_the_installed_llama_cpp_python(report: HardwareReport) -> None:
    assert report.errors == ()
    assert report.build is not None
    assert report.build.llama_cpp_version == metadata.version("llama-cpp-python") == "0.3.36"
    assert report.build.ggml_version
    assert report.build.ggml_commit
    assert "CPU" in report.build.backends
    assert "cpu" in report.build.backend_libraries
    assert report.build.system_info.startswith("CPU :")


def test_probe_sees_the_cpu_and_its_memory(report: HardwareReport) -> None:
    cpus = [device for device in report.devices if device.type is DeviceType.CPU]
    assert cpus
    assert all(0 < cpu.memory_free_bytes <= cpu.memory_total_bytes for cpu in cpus)
    assert report.system.physical_cores is not None and report.system.physical_cores >= 1


def test_gpu_offload_is_reported_when_and_only_when_a_gpu_is_seen(report: HardwareReport) -> None:
    assert report.build is not None
    gpus = [d for d in report.devices if d.type in (DeviceType.GPU, DeviceType.IGPU)]
    assert report.build.supports_gpu_offload == bool(gpus)
    if report.build.backend_libraries == ("cpu",):
        assert report.build.supports_gpu_offload is False


def test_probe_creates_the_log_file_with_its_folders(
    report: HardwareReport, probe_log: Path
) -> None:
    assert probe_log.read_bytes().startswith(HEADER)


def test_a_missing_ggml_library_is_an_error_line_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_library(lib_dir: Path, base: str) -> Path:
        raise FileNotFoundError(f"no {base} library in {lib_dir}")

    monkeypatch.setattr(hardware, "_library", no_library)
    report = probe_hardware(tmp_path / "native.log")
    assert report.build is not None
    assert report.build.supports_mmap is True
    assert report.devices == ()
    assert len(report.errors) == 1
    assert "no llama library" in report.errors[0]


def test_the_probe_writes_nothing_to_the_terminal(tmp_path: Path) -> None:
    log = tmp_path / "native.log"
    result = run_python(PROBE, str(log))
    assert result.returncode == 0, result.stderr.decode()
    assert (result.stdout, result.stderr) == (b"", b"")
    assert log.exists()


def test_ggml_messages_are_routed_too(tmp_path: Path) -> None:
    log = tmp_path / "native.log"
    result = run_python(GGML_LOG, str(log))
    assert result.returncode == 0, result.stderr.decode()
    assert (result.stdout, result.stderr) == (b"", b"")
    assert b"failed to load /nonexistent/libggml-nothing.so" in log.read_bytes()


@pytest.mark.parametrize("debug", [False, True], ids=["info", "debug"])
def test_loading_a_model_logs_to_the_file_only(
    starter_model: Path, tmp_path: Path, debug: bool
) -> None:
    log = tmp_path / "native.log"
    result = run_python(LOAD_MODEL, str(starter_model), str(log), "debug" if debug else "info")
    assert result.returncode == 0, result.stderr.decode()
    assert (result.stdout, result.stderr) == (b"", b"")
    text = log.read_bytes()
    assert b"llama_model_loader: loaded meta data" in text
    assert (b"create_tensor:" in text) is debug


def test_routing_again_to_the_same_file_changes_nothing(tmp_path: Path) -> None:
    log = tmp_path / "native.log"
    route_native_logs(log)
    route_native_logs(log)
    assert log.read_bytes().count(HEADER) == 1


def test_an_unwritable_log_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(StorageError, match="native log"):
        route_native_logs(blocker / "native.log")
