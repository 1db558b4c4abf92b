"""`termllm info owner/repo` and `pull owner/repo:auto`: a repo of many quantizations and a
split model, judged against synthetic GPU, RAM and disk figures, and pulled from the fake Hub."""

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from fakehub import FakeHub
from termllm_cli import termllm

from termllm.cli import models_cmd
from termllm.engine import fit
from termllm.engine.hardware import Device, DeviceType
from termllm.hub import space

Capsys = pytest.CaptureFixture[str]
MB = 1000**2
MIB = 1024**2
GIB = 1024**3
REPO = "org/SmolLM2-135M-Instruct-GGUF"
BASE = "SmolLM2-135M-Instruct"
# Quantizations besides the real header-bearing Q4_K_M (the starter model under that name):
# sparse files of the sizes a listing would show; only their sizes are used.
SIZES = {"Q2_K": 60 * MB, "F16": 271 * MB}
SPLIT_PART = 72 * MB  # Q8_0 comes in two parts


def gpu(free: int) -> Device:
    return Device("CUDA0", "NVIDIA Test", DeviceType.GPU, free, free)


def machine(ram: int | None, gpu_free: int | None = None) -> fit.Machine:
    devices = (gpu(gpu_free),) if gpu_free is not None else ()
    return fit.Machine(devices, gpu_free is not None, ram)


@pytest.fixture
def quants_repo(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, starter_model: Path
) -> Iterator[FakeHub]:
    folder = tmp_path_factory.mktemp("quants")
    files: dict[str, bytes | Path] = {f"{BASE}-Q4_K_M.gguf": starter_model, "README.md": b"# x\n"}
    for quant, size in SIZES.items():
        path = folder / f"{quant}.gguf"
        with path.open("wb") as handle:
            handle.truncate(size)
        files[f"{BASE}-{quant}.gguf"] = path
    part = folder / "part.gguf"
    with part.open("wb") as handle:
        handle.truncate(SPLIT_PART)
    for index in (1, 2):
        files[f"Q8_0/{BASE}-Q8_0-0000{index}-of-00002.gguf"] = part
    files[f"mmproj-{BASE}-f16.gguf"] = b"projector"
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        hub.add_repo(REPO, files)
        yield hub


def use(monkeypatch: pytest.MonkeyPatch, here: fit.Machine, disk: int | None = 100 * GIB) -> None:
    monkeypatch.setattr(fit, "read_machine", lambda: here)
    monkeypatch.setattr(space, "free_disk_bytes", lambda _cache: disk)


def info_json(capsys: Capsys, *args: str) -> dict[str, object]:
    result = termllm(capsys, "info", REPO, "--json", *args)
    assert result.code == 0, result.err
    return json.loads(result.out)  # type: ignore[no-any-return]


def files_by_label(plan: dict[str, object]) -> dict[str, dict[str, object]]:
    return {str(entry["label"]): entry for entry in plan["files"]}  # type: ignore[attr-defined]


# The starter model's Q4_K_M needs ~292 MB with every layer on the GPU at 4096 ctx, its Q8_0
# ~336 MB; the planner keeps a 1 GiB margin on top.
SOME_ROOM = 1 * GIB + 300 * MIB


def test_a_gpu_with_room_for_some_files(
    capsys: Capsys, quants_repo: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, machine(16 * GIB, SOME_ROOM))
    quants_repo.clear_log()
    plan = info_json(capsys)
    files = files_by_label(plan)
    # Smallest first; the projector is not a model; the split Q8_0 is one model of two parts.
    assert list(files) == ["Q2_K", "Q4_K_M", "Q8_0", "F16"]
    assert len(files["Q8_0"]["paths"]) == 2  # type: ignore[arg-type]
    assert files["Q8_0"]["size_bytes"] == 2 * SPLIT_PART
    assert [files[q]["where"] for q in files] == ["gpu", "gpu", "partial", "partial"]
    assert files["Q4_K_M"]["estimate"] == "header" and files["F16"]["estimate"] == "listing size"
    assert 15 < files["F16"]["bits_per_weight"] < 16  # type: ignore[operator]
    memory = files["Q4_K_M"]["memory"]
    parts = ("weights_bytes", "kv_cache_bytes", "compute_bytes", "other_bytes")
    assert memory["total_bytes"] == sum(memory[part] for part in parts)  # type: ignore[index]
    assert plan["recommended"] == "Q4_K_M" and plan["context_size"] == 4096
    assert "runs entirely on the GPU" in str(plan["reason"])
    # One header read (range requests on one file); the other sizes come from the listing.
    blobs = {request.path for request in quants_repo.log(server="cdn", method="GET")}
    assert len(blobs) == 1

    text = termllm(capsys, "info", REPO)
    assert text.code == 0, text.err
    lines = text.out.splitlines()[1:]
    rows = {next(word for word in line.split() if word.endswith(".gguf")): line for line in lines}
    assert rows[f"{BASE}-Q4_K_M.gguf"].startswith("*")
    assert not rows[f"{BASE}-F16.gguf"].startswith("*")
    assert "(+1 parts)" in rows[f"Q8_0/{BASE}-Q8_0-00001-of-00002.gguf"]
    assert "layers on the GPU" in rows[f"{BASE}-F16.gguf"]
    assert "recommended: Q4_K_M" in text.err and f"termllm pull {REPO}:auto" in text.err


def test_ctx_replans(capsys: Capsys, quants_repo: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, machine(16 * GIB, SOME_ROOM))
    small, large = info_json(capsys), info_json(capsys, "--ctx", "32768")
    assert large["context_size"] == 32768
    kv = [files_by_label(plan)["Q4_K_M"]["memory"]["kv_cache_bytes"] for plan in (small, large)]  # type: ignore[index]
    assert kv[1] == 8 * kv[0]
    assert files_by_label(large)["Q2_K"]["where"] == "cpu"  # KV and scores outgrow the GPU
    assert large["recommended"] == "F16"  # nothing is all on the GPU: the best that fits at all
    assert "fits at all" in str(large["reason"])


def test_cpu_only_with_enough_ram_takes_the_best_quality(
    capsys: Capsys, quants_repo: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, machine(16 * GIB))
    plan = info_json(capsys)
    assert {entry["where"] for entry in files_by_label(plan).values()} == {"cpu"}
    assert plan["recommended"] == "F16" and "entirely in RAM" in str(plan["reason"])
    assert plan["machine"]["gpu"] is None  # type: ignore[index]


def test_too_little_ram(
    capsys: Capsys, quants_repo: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, machine(280 * MB))  # Q2_K fits without the margin; Q4_K_M does not fit
    plan = info_json(capsys)
    files = files_by_label(plan)
    assert files["Q2_K"]["where"] == "cpu" and not files["Q2_K"]["fastest"]
    assert files["Q4_K_M"]["verdict"] == "does not fit: RAM"
    assert plan["recommended"] == "Q2_K" and "fits at all" in str(plan["reason"])

    use(monkeypatch, machine(100 * MB, 100 * MB))
    plan = info_json(capsys)
    assert plan["recommended"] is None and "even Q2_K is short of RAM + VRAM" in str(plan["reason"])
    result = termllm(capsys, "pull", f"{REPO}:auto")
    assert result.code == 1 and "no file fits this machine" in result.err
    assert quants_repo.file_gets() == [] or all(r.range for r in quants_repo.file_gets())


def test_a_full_disk_counts_what_is_already_downloaded(
    capsys: Capsys, quants_repo: FakeHub, monkeypatch: pytest.MonkeyPatch, starter_model: Path
) -> None:
    use(monkeypatch, machine(16 * GIB), disk=50 * MB)
    plan = info_json(capsys)
    assert {entry["verdict"] for entry in files_by_label(plan).values()} == {"does not fit: disk"}
    assert plan["recommended"] is None
    quants_repo.clear_log()
    result = termllm(capsys, "pull", f"{REPO}:Q4_K_M", "--yes")
    assert result.code == 1, result
    assert "98.4 MB more on disk" in result.err and "50.0 MB free" in result.err
    assert quants_repo.file_gets() == []

    # 60 MB of it already there from an interrupted pull: the 38 MB left fit in 50 MB.
    commit = quants_repo.repos[REPO].refs["main"]
    sha = quants_repo.repos[REPO].commits[commit][f"{BASE}-Q4_K_M.gguf"].sha256
    from termllm.config import load_config

    blobs = load_config().paths.hub_cache / f"models--{REPO.replace('/', '--')}" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{sha}.incomplete").write_bytes(starter_model.read_bytes()[: 60 * MB])
    assert files_by_label(info_json(capsys))["Q4_K_M"]["to_fetch_bytes"] == 98_362_432 - 60 * MB
    result = termllm(capsys, "pull", f"{REPO}:Q4_K_M")
    assert result.code == 0, result.err
    assert (blobs / sha).read_bytes() == starter_model.read_bytes()


def test_pull_auto_downloads_the_recommended_file(
    capsys: Capsys, quants_repo: FakeHub, monkeypatch: pytest.MonkeyPatch, starter_model: Path
) -> None:
    use(monkeypatch, machine(16 * GIB, SOME_ROOM))
    described = json.loads(termllm(capsys, "info", f"{REPO}:auto", "--json").out)
    assert described["ref"] == f"{REPO}:Q4_K_M" and described["source"] == "remote"
    result = termllm(capsys, "pull", f"{REPO}:auto")
    assert result.code == 0, result.err
    assert f"pulled {REPO}:Q4_K_M" in result.err and "warning" not in result.err
    [model] = [m for m in json.loads(termllm(capsys, "ls", "--json").out) if m["source"] == "hub"]
    assert Path(model["path"]).read_bytes() == starter_model.read_bytes()


def test_a_pull_that_will_not_fit_in_memory_asks_first(
    capsys: Capsys, quants_repo: FakeHub, monkeypatch: pytest.MonkeyPatch, starter_model: Path
) -> None:
    use(monkeypatch, machine(280 * MB))
    quants_repo.clear_log()
    result = termllm(capsys, "pull", f"{REPO}:q4_k_m")  # stdin is not a terminal
    assert result.code == 2, result
    [line] = result.err.splitlines()
    assert "will not fit in this machine's memory at 4096 ctx (does not fit: RAM" in line
    assert f"{REPO}:Q2_K would" in line and "pass --yes" in line
    assert quants_repo.log(server="cdn", method="GET")  # the header was read…
    assert all(r.range for r in quants_repo.file_gets())  # …but not a byte of the file pulled

    # On a terminal the question is asked; "no" downloads nothing.
    asked: list[str] = []
    real_sys, real_confirm = models_cmd.sys, typer.confirm
    monkeypatch.setattr(
        models_cmd, "sys", SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True))
    )
    monkeypatch.setattr(typer, "confirm", lambda text, **_: asked.append(text) or False)
    quants_repo.clear_log()
    result = termllm(capsys, "pull", f"{REPO}:Q4_K_M")
    assert result.code == 1 and asked == ["Pull it anyway?"]
    assert "will not fit" in result.err and "pull cancelled: nothing downloaded" in result.err
    assert all(r.range for r in quants_repo.file_gets())
    # Put back by hand: monkeypatch.undo() would also undo the isolated environment.
    monkeypatch.setattr(models_cmd, "sys", real_sys)
    monkeypatch.setattr(typer, "confirm", real_confirm)

    result = termllm(capsys, "pull", f"{REPO}:Q4_K_M", "--yes")
    assert result.code == 0, result.err
    assert result.err.startswith("warning: ") and f"pulled {REPO}:Q4_K_M" in result.err
