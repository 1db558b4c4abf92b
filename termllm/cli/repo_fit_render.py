"""How `termllm info owner/repo` shows a repo's files against this machine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from termllm.cli.output import note, print_table
from termllm.safe_text import one_line
from termllm.services.repo_fit import machine_summary
from termllm.units import format_bytes

if TYPE_CHECKING:
    from termllm.services.repo_fit import FileFit, RepoFit


def print_repo_fit(plan: RepoFit) -> None:
    columns = ("", "FILE", "QUANT", "BITS/W", "SIZE", "MEMORY", "RUNS HERE")
    rows = [
        (
            "*" if entry is plan.recommended else "",
            # File names and quant names come from the Hub: one safe line each.
            one_line(entry.paths[0], max_chars=100)
            + (f" (+{len(entry.paths) - 1} parts)" if len(entry.paths) > 1 else ""),
            one_line(entry.quant or "?", max_chars=40),
            f"{entry.bits_per_weight:.2f}" if entry.bits_per_weight is not None else "?",
            format_bytes(entry.size_bytes),
            "~" + format_bytes(entry.fit.memory.total_bytes),
            entry.verdict,
        )
        for entry in plan.files
    ]
    print_table(columns, rows)
    repo = one_line(plan.repo_id)
    here = machine_summary(plan.machine, plan.disk_free_bytes)
    note(f"at {plan.context_size} ctx; this machine: {here}")
    if plan.recommended is None:
        note(f"recommended: none: {plan.reason}")
        return
    best = plan.recommended
    note(
        f"recommended: {one_line(best.label, max_chars=100)} ({format_bytes(best.size_bytes)},"
        f" {best.verdict}): {plan.reason}; `termllm pull {repo}:auto` downloads it"
    )


def repo_fit_json(plan: RepoFit) -> dict[str, Any]:
    gpu = plan.machine.gpu
    return {
        "repo_id": plan.repo_id,
        "commit": plan.commit,
        "context_size": plan.context_size,
        "machine": {
            "gpu": gpu.name if gpu is not None else None,
            "gpu_free_bytes": gpu.memory_free_bytes if gpu is not None else None,
            "ram_available_bytes": plan.machine.ram_available_bytes,
            "disk_free_bytes": plan.disk_free_bytes,
        },
        "files": [_entry_json(entry, entry is plan.recommended) for entry in plan.files],
        "recommended": plan.recommended.label if plan.recommended is not None else None,
        "reason": plan.reason,
    }


def _entry_json(entry: FileFit, recommended: bool) -> dict[str, Any]:
    memory = entry.fit.memory
    return {
        "label": entry.label,
        "paths": list(entry.paths),
        "quant": entry.quant,
        "size_bytes": entry.size_bytes,
        "parameter_count": entry.parameter_count,
        "bits_per_weight": entry.bits_per_weight,
        "estimate": entry.estimate,
        "memory": {
            "weights_bytes": memory.weights_bytes,
            "kv_cache_bytes": memory.kv_cache_bytes,
            "compute_bytes": memory.compute_bytes,
            "other_bytes": memory.other_bytes,
            "total_bytes": memory.total_bytes,
            "ram_bytes": entry.fit.ram_bytes,
            "kv_cache_type": memory.kv_cache_type.value,
            "flash_attention": memory.flash_attention,
        },
        "where": entry.fit.where.value,
        "gpu_layers": entry.fit.gpu_blocks,
        "total_layers": entry.fit.total_blocks,
        "fastest": entry.fit.fastest,
        "short_of": [*entry.fit.short_of, *(() if entry.disk_fits else ("disk",))],
        "to_fetch_bytes": entry.to_fetch_bytes,
        "verdict": entry.verdict,
        "recommended": recommended,
    }
