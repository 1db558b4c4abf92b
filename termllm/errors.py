"""Errors users can see: each carries a one-line message and the exit code the CLI returns."""

from __future__ import annotations


class ExitCode:
    """Process exit codes, one per kind of failure, so scripts can tell them apart."""

    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_FOUND = 3
    NETWORK = 4
    INTEGRITY = 5
    INTERRUPTED = 130


class TermllmError(Exception):
    """Base of every error that is the user's to read: `str(err)` is the whole message."""

    exit_code: int = ExitCode.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(TermllmError):
    """The config file or a TERMLLM_* variable is wrong."""

    exit_code = ExitCode.USAGE


class UsageError(TermllmError):
    """A value given on the command line cannot be used."""

    exit_code = ExitCode.USAGE


class ModelRefError(TermllmError):
    """A model reference cannot be parsed or is ambiguous."""

    exit_code = ExitCode.USAGE


class ModelNotFoundError(TermllmError):
    """No model, repo, revision, quant or file matches the reference."""

    exit_code = ExitCode.NOT_FOUND


class ConversationNotFoundError(TermllmError):
    """No saved conversation has the given id (or id prefix)."""

    exit_code = ExitCode.NOT_FOUND


class GGUFError(TermllmError):
    """A file is not GGUF, or is truncated or corrupt."""


class HubError(TermllmError):
    """The Hub answered with an error (gated repo, server error)."""


class NetworkError(TermllmError):
    """The Hub cannot be reached, or offline mode forbids reaching it."""

    exit_code = ExitCode.NETWORK


class ServerError(NetworkError):
    """An OpenAI-compatible server could not be reached, refused, or answered with something
    that is not an answer."""


class IntegrityError(TermllmError):
    """Downloaded bytes do not match the hash the Hub published."""

    exit_code = ExitCode.INTEGRITY


class StorageError(TermllmError):
    """A file or folder termllm needs cannot be read or written (permissions, full disk)."""


class RefusedError(TermllmError):
    """termllm will not do what was asked, for a stated reason (e.g. deleting a user's file)."""


class ModelLoadError(TermllmError):
    """llama.cpp could not load a model (corrupt file, unsupported architecture, no memory)."""


class GenerationError(TermllmError):
    """Generation failed part way (the partial answer is kept)."""
