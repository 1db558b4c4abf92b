"""CPU cores and RAM of this machine, as the OS reports them (no llama.cpp needed)."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

_CPUINFO = Path("/proc/cpuinfo")
_MEMINFO = Path("/proc/meminfo")
_UNIT_BYTES = {"kb": 1024, "mb": 1024**2, "gb": 1024**3}


@dataclass(frozen=True)
class SystemInfo:
    """What the OS says about the machine; None where it cannot tell."""

    logical_cpus: int | None
    """CPUs this process may run on: its affinity mask where the OS has one, else all of them."""
    physical_cores: int | None
    """Distinct cores behind those CPUs; decoding runs best with one thread per core."""
    ram_total_bytes: int | None
    """Physical memory of the machine."""
    ram_available_bytes: int | None
    """Memory the kernel can hand out without swapping (Linux MemAvailable); None elsewhere."""


def read_system_info() -> SystemInfo:
    """Read cores and RAM from /proc on Linux, with portable fallbacks elsewhere."""
    allowed = _affinity()
    logical = len(allowed) if allowed else os.cpu_count()
    cpuinfo = _read(_CPUINFO)
    physical = parse_physical_cores(cpuinfo, allowed) if cpuinfo is not None else None
    meminfo = _read(_MEMINFO)
    total, available = parse_meminfo(meminfo) if meminfo is not None else (None, None)
    return SystemInfo(
        logical_cpus=logical,
        physical_cores=physical if physical is not None else logical,
        ram_total_bytes=total if total is not None else _sysconf_ram_bytes(),
        ram_available_bytes=available,
    )


def parse_physical_cores(cpuinfo: str, allowed: Collection[int] | None = None) -> int | None:
    """Count distinct (physical id, core id) pairs in /proc/cpuinfo text.

    Only processors in `allowed` count when it is given, so a process pinned to a few CPUs is
    not told about cores it cannot use. None when the text carries no topology (some ARM kernels
    and VMs omit it), so the caller can fall back to the logical count.
    """
    cores: set[tuple[str, str]] = set()
    for fields in _cpuinfo_blocks(cpuinfo):
        core = fields.get("core id")
        if core is None:
            continue
        processor = fields.get("processor", "")
        if allowed is not None and processor.isdigit() and int(processor) not in allowed:
            continue
        cores.add((fields.get("physical id", "0"), core))
    return len(cores) or None


def parse_meminfo(meminfo: str) -> tuple[int | None, int | None]:
    """Return (MemTotal, MemAvailable) in bytes from /proc/meminfo text; None where missing."""
    values: dict[str, int] = {}
    for line in meminfo.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts or not parts[0].isdigit():
            continue
        unit = _UNIT_BYTES.get(parts[1].lower(), 1) if len(parts) > 1 else 1
        values[key.strip()] = int(parts[0]) * unit
    return values.get("MemTotal"), values.get("MemAvailable")


def _cpuinfo_blocks(cpuinfo: str) -> Iterator[dict[str, str]]:
    """Yield one key/value dict per processor; blocks are separated by blank lines."""
    fields: dict[str, str] = {}
    for line in [*cpuinfo.splitlines(), ""]:
        if not line.strip():
            if fields:
                yield fields
            fields = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()


def _affinity() -> set[int] | None:
    try:
        return os.sched_getaffinity(0)
    except (AttributeError, OSError):  # AttributeError: not Linux
        return None


def _sysconf_ram_bytes() -> int | None:
    # macOS and the BSDs have no /proc/meminfo but answer these sysconf names.
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # AttributeError: Windows has no sysconf
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
