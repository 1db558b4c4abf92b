"""Running the real CLI entry point in-process (error mapping included) or as a subprocess."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from termllm.cli.main import _invoke


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def termllm(capsys: pytest.CaptureFixture[str], *args: str, stdin: bytes = b"") -> Result:
    """In-process, with `stdin` as a pipe (never the test runner's own input)."""
    capsys.readouterr()
    real_stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        code = _invoke(list(args), debug=False)
    finally:
        sys.stdin = real_stdin
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def termllm_process(
    *args: str,
    stdin: str | None = None,
    timeout: float = 120,
    python_flags: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
) -> Result:
    """A subprocess, with `env` over the test's environment."""
    completed = subprocess.run(
        [sys.executable, *python_flags, "-m", "termllm", *args],
        # Never the test runner's own stdin: a command that reads a pipe must not wait on it.
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)
