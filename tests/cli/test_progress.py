"""The pull progress bar shows a Hub file name as it is, never as Rich markup."""

from __future__ import annotations

import io

from rich.console import Console

from termllm.cli.progress import RichTransferProgress


def test_a_file_name_with_brackets_is_shown_literally() -> None:
    shown = io.StringIO()
    with RichTransferProgress(Console(file=shown, width=120, force_terminal=False)) as bar:
        bar.begin("m-[red]x[/red].gguf", 10, 0)
        bar.advance(10)
        bar.end()
    assert "m-[red]x[/red].gguf" in shown.getvalue()
