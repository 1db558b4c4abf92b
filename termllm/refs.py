"""The one grammar for naming a model, used by every command that takes one.

- `owner/repo[@rev][:QUANT]`         a quantization of a Hub repo (`:q4_k_m` works too)
- `owner/repo[@rev]/path/file.gguf`  an exact file in a Hub repo
- `./model.gguf`, `/abs/model.gguf`  a local file (an existing path always wins)
- `smollm2-135m-instruct`            a short name of a model already on disk
- `@box/qwen3:32b`                   a model of the server named `box` in the config
"""

from __future__ import annotations

import re
from pathlib import Path

from termllm.domain import HubRef, ModelRef, NameRef, PathRef, ServerRef
from termllm.errors import ModelRefError
from termllm.model_files import is_gguf_name
from termllm.safe_text import argument_text, one_line

_REPO_PART = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REPO_ID = re.compile(rf"^{_REPO_PART}/{_REPO_PART}$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SERVER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_SERVER_MODEL_CHARS = 256


def parse_model_ref(text: str, cwd: Path | None = None) -> ModelRef:
    """Read a model reference; raises ModelRefError with the grammar when it fits none."""
    text = text.strip()
    if not text:
        raise ModelRefError("empty model reference")
    if text.startswith("@"):
        return _parse_server_ref(argument_text(text))
    try:
        candidate = Path(text).expanduser()
    except RuntimeError:
        # `~name/…` for a user this system does not know.
        user = text[1:].split("/", 1)[0]
        raise ModelRefError(
            f"'{_shown(text)}': there is no user '{_shown(user)}' whose home folder it names"
        ) from None
    if not candidate.is_absolute() and cwd is not None:
        candidate = cwd / candidate
    looks_like_path = text.startswith(("/", "./", "../", "~")) or "\\" in text
    if looks_like_path or (is_gguf_name(text) and candidate.exists()):
        # A file name keeps its bytes, even those that are not UTF-8, so the file is found.
        return PathRef(candidate)
    if is_gguf_name(text) and "/" not in text:
        # A bare "x.gguf" that does not exist: say so rather than search the Hub for it.
        return PathRef(candidate)
    # A name or a Hub reference is text: bytes that were not UTF-8 become U+FFFD, as they do
    # in the names of local models, which the history stores.
    text = argument_text(text)
    if "/" not in text:
        if ":" in text or "@" in text:
            raise ModelRefError(
                f"'{_shown(text)}': a quant or revision needs a repo (owner/repo:QUANT)"
            )
        return NameRef(text)
    return _parse_hub_ref(text)


def _shown(text: str) -> str:
    """A reference quoted in an error: it may come from anywhere (a saved conversation)."""
    return one_line(text, max_chars=120)


def _parse_server_ref(text: str) -> ServerRef:
    server, slash, model_id = text[1:].partition("/")
    if not slash or not _SERVER_NAME.match(server) or not model_id.strip():
        raise ModelRefError(
            f"'{_shown(text)}' is not a server model: use @SERVER/MODEL, with SERVER a"
            " [servers.SERVER] of the config"
        )
    if len(model_id) > MAX_SERVER_MODEL_CHARS or any(not c.isprintable() for c in model_id):
        raise ModelRefError(f"'{_shown(text)}': a server's model id is one short line")
    return ServerRef(server, model_id)


def _parse_hub_ref(text: str) -> HubRef:
    owner, rest = text.split("/", 1)
    name_and_more, _, file_path = rest.partition("/")
    quant: str | None = None
    if not file_path and ":" in name_and_more:
        name_and_more, quant = name_and_more.split(":", 1)
        if not re.fullmatch(r"[A-Za-z0-9_]+", quant):
            raise ModelRefError(
                f"'{_shown(text)}': '{_shown(quant)}' is not a quantization name (e.g. Q4_K_M)"
            )
        quant = quant.upper()
    name, _, revision = name_and_more.partition("@")
    repo_id = f"{owner}/{name}"
    if not _REPO_ID.match(repo_id) or ".." in repo_id:
        raise ModelRefError(
            f"'{_shown(text)}' is not a model reference: use owner/repo[:QUANT],"
            " owner/repo/file.gguf, a path to a .gguf file, or the name of a local model"
        )
    if revision and not _REVISION.match(revision):
        raise ModelRefError(f"'{_shown(text)}': '{_shown(revision)}' is not a valid revision")
    if file_path:
        if not is_gguf_name(file_path):
            raise ModelRefError(f"'{_shown(text)}': a file in a repo must end in .gguf")
        return HubRef(repo_id, revision or None, filename=file_path)
    return HubRef(repo_id, revision or None, quant=quant)
