import json
from pathlib import Path

import pytest
from termllm_cli import termllm, termllm_process

Capsys = pytest.CaptureFixture[str]


def test_config_path_and_show(capsys: Capsys, isolated_env: Path) -> None:
    result = termllm(capsys, "config", "path")
    assert result.out.strip() == str(isolated_env / "config" / "config.toml")
    shown = json.loads(termllm(capsys, "config", "show", "--json").out)
    assert shown["settings"]["models.context_size"] == 4096
    assert shown["paths"]["data_dir"] == str(isolated_env / "data")
    assert "models.default_quant" in termllm(capsys, "config", "show").out


def test_a_broken_config_is_one_line_naming_file_line_and_key(
    capsys: Capsys, isolated_env: Path
) -> None:
    config_file = isolated_env / "config" / "config.toml"
    config_file.parent.mkdir(parents=True)
    config_file.write_text("[models]\ncontext_size = 4096\nctx = 2\n")
    result = termllm(capsys, "ls")
    assert result.code == 2
    assert result.err == (
        f"termllm: error: {config_file}:3: models.ctx: unknown key"
        " (known in [models]: default, default_quant, context_size, gpu_layers, threads,"
        " chat_template, kv_cache_type, flash_attention)\n"
    )


def test_debug_shows_the_traceback(isolated_env: Path) -> None:
    result = termllm_process("--debug", "info", "no-such-model")
    assert result.code == 3
    assert "Traceback" in result.err and "no local model matches" in result.err
    plain = termllm_process("info", "no-such-model")
    assert "Traceback" not in plain.err


def test_doctor_reports_build_devices_and_paths_without_native_noise(
    isolated_env: Path, starter_model: Path
) -> None:
    result = termllm_process("doctor", "--json")
    assert result.code == 0
    assert result.err == ""
    report = json.loads(result.out)
    hardware = report["hardware"]
    assert hardware["build"]["llama_cpp_version"].startswith("0.3.")
    assert hardware["build"]["supports_gpu_offload"] is False
    assert any(device["type"] == "cpu" for device in hardware["devices"])
    assert hardware["system"]["ram_total_bytes"] > 0
    assert report["paths"]["logs"] == str(isolated_env / "logs")
    assert report["model_count"] >= 1
    text = termllm_process("doctor")
    assert "GPU offload" in text.out and "built for the CPU only" in text.out


def test_doctor_explains_how_a_model_would_load(isolated_env: Path, starter_model: Path) -> None:
    result = termllm_process("doctor", "-m", "smollm2-135m-instruct", "--json")
    assert result.code == 0, result.err
    plan = json.loads(result.out)["model_plan"]
    assert plan["n_ctx"] == 4096
    assert plan["placement"]["gpu_layers"] == 0
    assert plan["placement"]["total_layers"] == 30
    assert plan["placement"]["reason"] == "this llama.cpp build has no GPU support"
    text = termllm_process("doctor", "-m", "smollm2-135m-instruct").out
    assert "0 of 30 on CPU" in text and "trained on 8192" in text
