"""Flag values Typer's types let through, checked before a command does anything with them.

Typer's own min and max pass `nan` and keep a second copy of each range; a flag is checked
against the setting's field instead, so it is refused in the words config.toml and the app use.
"""

from __future__ import annotations

from termllm.errors import UsageError
from termllm.setting_fields import ChoiceField, SettingField, check_value


def check_flag(flag: str, item: SettingField | ChoiceField, value: object) -> None:
    """Refuse a flag's value that `item` does not accept (None: the flag was not given)."""
    if value is None:
        return
    problem = check_value(item, value)
    if problem is not None:
        raise UsageError(f"{flag}: {problem}, got {value!r}")


def check_cid(cid: str | None) -> None:
    """Refuse an empty `--cid`: it would quietly mean another conversation (the latest in
    `ask`, a new one in `chat`)."""
    if cid is not None and not cid.strip():
        raise UsageError("--cid: give a conversation id (or a unique prefix of one)")
