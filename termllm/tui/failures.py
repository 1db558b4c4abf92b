"""What the app says when an action fails: the app never shows a traceback, which would take the
user's conversation off the screen with it."""

from __future__ import annotations

import logging

from termllm.errors import TermllmError


def failure_text(err: Exception, logger: logging.Logger, doing: str) -> str:
    """One line for a notification. A TermllmError carries its own; anything else is a bug, so
    it is logged with its traceback and named by its type. Call inside the `except` block."""
    if isinstance(err, TermllmError):
        return err.message
    logger.exception("%s failed", doing)
    return f"{type(err).__name__}: {err}"
