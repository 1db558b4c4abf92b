"""`termllm doctor`: versions, GPU support, devices and memory, paths — "why is it on my CPU?"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from termllm.cli.context import services
from termllm.cli.output import print_json, print_table, to_jsonable
from termllm.units import format_bytes

if TYPE_CHECKING:
    from termllm.engine.planning import LoadPlan
    from termllm.services.doctor import DoctorReport


def doctor(
    ctx: typer.Context,
    model: str = typer.Option(
        None, "-m", "--model", help="Also show how this model would load here, and why."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Show what llama.cpp can use here (backends, devices, memory) and where files live."""
    from termllm.services.chat import LoadOptions

    found = services(ctx)
    report = found.doctor.report()
    plan = None
    if model:
        chosen = found.models.find(model)
        plan = (chosen.ref, found.chat.plan(chosen, LoadOptions()))
    if as_json:
        payload = to_jsonable(report)
        if plan is not None:
            payload["model_plan"] = _plan_json(*plan)
        print_json(payload)
        return
    _print_report(report)
    if plan is not None:
        typer.echo()
        print_table(None, _plan_rows(*plan))


def _plan_json(ref: str, plan: LoadPlan) -> dict[str, Any]:
    return {
        "ref": ref,
        "n_ctx": plan.n_ctx,
        "threads": plan.threads,
        "placement": to_jsonable(plan.placement),
        "warnings": list(plan.warnings),
    }


def _plan_rows(ref: str, plan: LoadPlan) -> list[tuple[str, str]]:
    placement = plan.placement
    offloaded = (
        "all"
        if placement.gpu_layers < 0 or placement.gpu_layers > placement.total_layers
        else str(max(0, placement.gpu_layers - 1))
    )
    rows = [
        ("model", ref),
        ("context", f"{plan.n_ctx} tokens (trained on {plan.summary.context_length or '?'})"),
        ("threads", str(plan.threads)),
        ("GPU layers", f"{offloaded} of {placement.total_layers} on {placement.device}"),
        ("why", placement.reason),
    ]
    return rows + [("warning", warning) for warning in plan.warnings]


def _print_report(report: DoctorReport) -> None:
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
    rows += [("problem", error) for error in hardware.errors]
    print_table(None, rows)


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
