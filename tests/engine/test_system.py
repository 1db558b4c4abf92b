"""Cores and RAM: parsing of synthetic /proc text, and one real read of this machine."""

from __future__ import annotations

import os

import pytest

from termllm.engine.system import parse_meminfo, parse_physical_cores, read_system_info


def fake_cpuinfo(sockets: int, cores: int, threads: int) -> str:
    """/proc/cpuinfo as x86 Linux writes it: first one thread of every core, then the siblings."""
    blocks = []
    processor = 0
    for _thread in range(threads):
        for socket in range(sockets):
            for core in range(cores):
                blocks.append(
                    f"processor\t: {processor}\n"
                    f"model name\t: Fake CPU\n"
                    f"physical id\t: {socket}\n"
                    f"siblings\t: {cores * threads}\n"
                    f"core id\t\t: {core}\n"
                    f"cpu cores\t: {cores}\n"
                )
                processor += 1
    return "\n".join(blocks)


ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 48.00
CPU implementer\t: 0x61

processor\t: 1
BogoMIPS\t: 48.00
CPU implementer\t: 0x61
"""

MEMINFO = """MemTotal:       16303972 kB
MemFree:         1201044 kB
MemAvailable:    9876544 kB
Buffers:          361120 kB
HugePages_Total:       0
"""


def test_two_sockets_of_four_cores_with_two_threads_are_eight_physical_cores() -> None:
    assert parse_physical_cores(fake_cpuinfo(sockets=2, cores=4, threads=2)) == 8


def test_core_ids_repeat_across_sockets_but_count_separately() -> None:
    assert parse_physical_cores(fake_cpuinfo(sockets=2, cores=1, threads=1)) == 2


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [({0, 8}, 1), ({0, 1, 2}, 3), ({0, 4}, 2), (set(range(16)), 8)],
    ids=["two-siblings", "three-cores", "one-per-socket", "all"],
)
def test_affinity_counts_only_the_cores_the_process_may_use(
    allowed: set[int], expected: int
) -> None:
    text = fake_cpuinfo(sockets=2, cores=4, threads=2)
    assert parse_physical_cores(text, allowed) == expected


def test_cpuinfo_without_topology_gives_none() -> None:
    assert parse_physical_cores(ARM_CPUINFO) is None
    assert parse_physical_cores("") is None


def test_meminfo_gives_total_and_available_in_bytes() -> None:
    assert parse_meminfo(MEMINFO) == (16303972 * 1024, 9876544 * 1024)


def test_meminfo_without_mem_available_gives_none_for_it() -> None:
    assert parse_meminfo("MemTotal: 2048 kB\nMemFree: 1024 kB\n") == (2048 * 1024, None)


def test_unreadable_meminfo_gives_nones() -> None:
    assert parse_meminfo("garbage\nMemTotal: lots\n") == (None, None)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux /proc and affinity")
def test_this_machine() -> None:
    info = read_system_info()
    assert info.logical_cpus == len(os.sched_getaffinity(0))
    assert info.physical_cores is not None
    assert 1 <= info.physical_cores <= info.logical_cpus
    assert info.ram_total_bytes is not None
    assert info.ram_available_bytes is not None
    assert 0 < info.ram_available_bytes <= info.ram_total_bytes
