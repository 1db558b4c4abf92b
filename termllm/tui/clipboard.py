"""The system clipboard, through the command this desktop provides for it (pbcopy, wl-copy,
xclip or xsel). Terminals may ignore the OSC 52 request Textual sends, and say nothing when they
do: a command that exits 0 is the only way to know that text reached a clipboard."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping

# xclip and wl-copy return once they have read the text (a child keeps serving it); a command
# that has not returned by then is stuck, for instance on a display that does not answer.
COPY_TIMEOUT_S = 3.0

# (command, the environment variable that says its display is there) in the order tried.
_DESKTOP_COMMANDS: tuple[tuple[tuple[str, ...], str | None], ...] = (
    (("wl-copy",), "WAYLAND_DISPLAY"),
    (("xclip", "-selection", "clipboard", "-in"), "DISPLAY"),
    (("xsel", "--clipboard", "--input"), "DISPLAY"),
)


def clipboard_command(
    environ: Mapping[str, str],
    platform: str = sys.platform,
    which: Callable[[str], str | None] = shutil.which,
) -> list[str] | None:
    """The command that puts its standard input on this desktop's clipboard, if one is
    installed and its display is reachable (over SSH without a forwarded display, none is)."""
    candidates = _DESKTOP_COMMANDS
    if platform == "darwin":
        candidates = ((("pbcopy",), None),)
    for command, display_variable in candidates:
        if display_variable is not None and not environ.get(display_variable):
            continue
        found = which(command[0])
        if found is not None:
            return [found, *command[1:]]
    return None


def copy_with(command: list[str], text: str) -> bool:
    """Whether `command` took `text`: it exited 0 within COPY_TIMEOUT_S."""
    try:
        # No pipes for output: the child that xclip leaves behind would hold them open.
        completed = subprocess.run(
            command,
            input=text.encode(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=COPY_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return completed.returncode == 0
