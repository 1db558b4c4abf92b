"""Folders that cannot be written and disks that are full, made for real: permissions (or, for
root, whom permissions do not stop, the immutable attribute) and a file size limit of zero."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest


@contextlib.contextmanager
def unwritable(*paths: Path) -> Iterator[None]:
    """`paths` (folders and files) cannot be changed, created in or deleted from while inside."""
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in paths}
        for path, mode in modes.items():
            path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    try:
        subprocess.run(["chattr", "+i", *map(str, paths)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("running as root, and this file system cannot make a file immutable")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True, capture_output=True)


def _no_file_may_grow() -> None:
    # As on a full disk, every write that would make a file larger fails (EFBIG), and without
    # the default SIGXFSZ, which would kill the process instead.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))


def run_on_full_disk(
    args: Sequence[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python ARGS` in a process for which the disk is full (its pipes still work)."""
    return subprocess.run(
        [sys.executable, *args],
        input="",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        preexec_fn=_no_file_may_grow,
        check=False,
    )
