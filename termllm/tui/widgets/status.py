"""The status bar: model, where it runs, how full the context is, and the last answer's speed."""

from __future__ import annotations

from dataclasses import dataclass, replace

from textual.reactive import reactive
from textual.widgets import Static

from termllm.engine.base import LoadReport


@dataclass(frozen=True)
class StatusInfo:
    model: str = "no model"
    placement: str = ""
    used_tokens: int | None = 0
    """None: not known (a server that does not report usage)."""
    n_ctx: int = 0
    remote: bool = False
    """A server runs the model: its context may be unknown (n_ctx 0)."""
    tokens_per_s: float | None = None
    loading: bool = False
    busy: str = ""


def placement_text(report: LoadReport) -> str:
    placement = report.placement
    if report.server is not None:
        return f"server {report.server}"
    if placement.gpu_layers == 0:
        return "CPU"
    return f"GPU {placement.blocks_on_gpu}/{placement.total_layers} {placement.device}"


class StatusBar(Static):
    info: reactive[StatusInfo] = reactive(StatusInfo, always_update=True)

    def __init__(self, *, cancel_key: str, id: str | None = None) -> None:
        # A model's name can come from a file or an import: never read as markup.
        super().__init__(id=id, markup=False)
        self._cancel_key = cancel_key

    def change(self, **fields: object) -> None:
        self.info = replace(self.info, **fields)  # type: ignore[arg-type]

    def watch_info(self, info: StatusInfo) -> None:
        parts = [f"loading {info.model}…" if info.loading else info.model]
        if info.placement:
            parts.append(info.placement)
        if info.n_ctx or info.remote:
            parts.append(_context_text(info))
        if info.tokens_per_s is not None:
            parts.append(f"{info.tokens_per_s:.1f} tok/s")
        if info.busy:
            parts.append(f"{info.busy}… {self._cancel_key} cancels")
        self.update(" · ".join(parts))


def _context_text(info: StatusInfo) -> str:
    """How full the context is, "unknown" for what a server did not say (never a guess)."""
    used = "unknown" if info.used_tokens is None else str(info.used_tokens)
    total = str(info.n_ctx) if info.n_ctx else "unknown"
    return "ctx unknown" if used == total == "unknown" else f"ctx {used}/{total}"
