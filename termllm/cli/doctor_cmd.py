"""`termllm doctor`: versions, GPU support, devices and memory, paths — "why is it on my CPU?"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from termllm.cli.context import services
from termllm.cli.models_cmd import memory_line
from termllm.cli.options import FLASH_ATTN_HELP, KV_TYPE_HELP, check_memory_flags, memory_flags
from termllm.cli.output import kv_cache_words, print_json, print_table, to_jsonable
from termllm.cli.server_rows import server_json, server_line
from termllm.domain import ServerModel
from termllm.safe_text import one_line
from termllm.setting_fields import FlashAttention
from termllm.units import format_bytes

if TYPE_CHECKING:
    from termllm.engine.planning import LoadPlan
    from termllm.gguf.summary import MemoryEstimate
    from termllm.services.doctor import DoctorReport
    from termllm.services.servers import ServerListing


def doctor(
    ctx: typer.Context,
    model: str = typer.Option(
        None, "-m", "--model", help="Also show how this model would load here, and why."
    ),
    kv_type: str = typer.Option(None, "--kv-type", help=KV_TYPE_HELP),
    flash_attn: str = typer.Option(None, "--flash-attn", help=FLASH_ATTN_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Show what llama.cpp can use here (backends, devices, memory) and where files live."""
    from termllm.services.chat import LoadOptions

    kv_cache_type, flash_attention = memory_flags(kv_type, flash_attn)
    found = services(ctx)
    check_memory_flags(kv_cache_type, flash_attention, found.config.settings.models)
    report = found.doctor.report()
    plan = None
    served: ServerModel | None = None
    if model:
        chosen = found.chat.choose_model(model)
        if isinstance(chosen, ServerModel):
            served = chosen
        else:
            options = LoadOptions(kv_cache_type=kv_cache_type, flash_attention=flash_attention)
            plan = (chosen.ref, found.chat.plan(chosen, options))
    listings = found.servers.listings()
    if as_json:
        payload = to_jsonable(report)
        payload["servers"] = [server_json(listing) for listing in listings]
        if plan is not None:
            payload["model_plan"] = _plan_json(*plan)
        print_json(payload)
        return
    _print_report(report, listings)
    if plan is not None:
        typer.echo()
        print_table(None, _plan_rows(*plan))
    if served is not None:
        typer.echo()
        print_table(None, [("model", served.ref), ("placement", f"server {served.server}")])


def _plan_json(ref: str, plan: LoadPlan) -> dict[str, Any]:
    return {
        "ref": ref,
        "n_ctx": plan.n_ctx,
        "threads": plan.threads,
        "placement": to_jsonable(plan.placement),
        "kv_cache_type": plan.memory.kv_type.value,
        "flash_attention": plan.memory.flash,
        "memory": to_jsonable(_estimate(plan)),
        "warnings": list(plan.warnings),
    }


def _estimate(plan: LoadPlan) -> MemoryEstimate:
    from termllm.gguf.summary import estimate_memory

    return estimate_memory(plan.summary, plan.n_ctx, plan.memory)


def _plan_rows(ref: str, plan: LoadPlan) -> list[tuple[str, str]]:
    placement = plan.placement
    blocks = placement.blocks_on_gpu
    offloaded = "all" if blocks == placement.total_layers else str(blocks)
    rows = [
        ("model", ref),
        ("context", f"{plan.n_ctx} tokens (trained on {plan.summary.context_length or '?'})"),
        ("threads", str(plan.threads)),
        ("GPU layers", f"{offloaded} of {placement.total_layers} on {placement.device}"),
        ("why", placement.reason),
        ("KV cache", _cache_line(plan)),
        ("memory", memory_line(_estimate(plan))),
    ]
    return rows + [("warning", warning) for warning in plan.warnings]


def _cache_line(plan: LoadPlan) -> str:
    memory = plan.memory
    words = kv_cache_words(memory.kv_type, memory.flash)
    if memory.flash_attention is FlashAttention.AUTO and memory.flash:
        words += " (auto: a quantized KV cache needs it)"
    return words


def _print_report(report: DoctorReport, listings: list[ServerListing]) -> None:
    hardware = report.hardware
    build, system = hardware.build, hardware.system
    rows: list[tuple[str, str]] = [
        ("termllm", report.termllm_version),
        ("python", f"{report.python_version} on {report.platform}"),
    ]
    if build is None:
        rows.append(("llama-cpp-python", "not available"))
    else:
        llama = build.llama_cpp_version
        if build.ggml_version or build.ggml_commit:
            llama += f" (ggml {build.ggml_version or '?'}, commit {build.ggml_commit or '?'})"
        rows += [
            ("llama-cpp-python", llama),
            ("backends", ", ".join(build.backends) or "?"),
            ("GPU offload", _gpu_verdict(report)),
            ("system info", build.system_info),
        ]
    cores = system.physical_cores or "?"
    rows += [
        ("CPU", f"{cores} physical cores, {system.logical_cpus or '?'} threads available"),
        (
            "RAM",
            f"{format_bytes(system.ram_available_bytes)} free of"
            f" {format_bytes(system.ram_total_bytes)}",
        ),
    ]
    for device in hardware.devices:
        rows.append(
            (
                f"device {device.name}",
                f"{device.description} [{device.type.value}]: "
                f"{format_bytes(device.memory_free_bytes)} free of "
                f"{format_bytes(device.memory_total_bytes)}",
            )
        )
    rows += [(name, location) for name, location in report.paths.items()]
    rows += [
        ("hub", report.hub_endpoint + (" (offline)" if report.offline else "")),
        (
            "models",
            f"{report.model_count} on disk, hub cache {format_bytes(report.hub_cache_bytes)}",
        ),
    ]
    rows += [(f"server {listing.name}", server_line(listing)) for listing in listings]
    rows += [("problem", error) for error in hardware.errors]
    # What servers say and what headers hold: one safe line each.
    print_table(None, [(name, one_line(value, 400)) for name, value in rows])


def _gpu_verdict(report: DoctorReport) -> str:
    build = report.hardware.build
    gpus = [device for device in report.hardware.devices if device.type.value != "cpu"]
    if build is not None and build.supports_gpu_offload and gpus:
        return f"yes: {', '.join(device.description for device in gpus)}"
    if build is not None and build.supports_gpu_offload:
        return "compiled in, but no GPU device was found (check the driver)"
    return (
        "no: this llama-cpp-python was built for the CPU only; reinstall it with"
        ' CMAKE_ARGS="-DGGML_CUDA=on" (or -DGGML_METAL=on, -DGGML_VULKAN=on)'
        " pip install --force-reinstall --no-cache-dir llama-cpp-python"
    )


def register(app: typer.Typer) -> None:
    app.command()(doctor)
