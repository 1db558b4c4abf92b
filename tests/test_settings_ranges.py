"""Every setting checked against one table of ranges wherever it is set (a flag, a TERMLLM_*
variable, config.toml, a conversation's saved settings, an import), with one line that names
where: a bad value is a usage error before anything is read or saved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from termllm_cli import Result, termllm

from termllm.engine.base import LoadRequest
from termllm.engine.planning import plan_load
from termllm.gguf.reader import read_header
from termllm.gguf.source import FileSource
from termllm.gguf.summary import summarize
from termllm.setting_fields import KvCacheType, MemoryOptions

Capsys = pytest.CaptureFixture[str]


def refused(result: Result, message: str) -> None:
    """Exit 2 with `message` as the only line, nothing on stdout."""
    assert (result.code, result.out) == (2, ""), result
    assert result.err == f"termllm: error: {message}\n"


def nothing_saved(home: Path) -> None:
    assert not (home / "data" / "history.db").exists(), "the history was opened"


@pytest.mark.parametrize(
    ("flag", "value", "problem"),
    [
        ("--temperature", "nan", "must be a finite number, got nan"),
        ("--temperature", "inf", "must be a finite number, got inf"),
        ("--temperature", "-3", "must be at least 0, got -3.0"),
        ("--top-p", "nan", "must be a finite number, got nan"),
        ("--top-p", "2", "must be at most 1, got 2.0"),
        ("--min-p", "-inf", "must be a finite number, got -inf"),
        ("--min-p", "1.5", "must be at most 1, got 1.5"),
        ("--repeat-penalty", "nan", "must be a finite number, got nan"),
        ("--repeat-penalty", "1e400", "must be a finite number, got inf"),
        ("--top-k", "-5", "must be at least 0, got -5"),
        ("--seed", "-1", "must be at least 0, got -1"),
        ("--seed", "4294967295", "must be at most 4294967294, got 4294967295"),
        ("--max-tokens", "0", "must be at least 1, got 0"),
        ("--think-budget", "-1", "must be at least 0, got -1"),
        ("--ctx", "0", "must be at least 64, got 0"),
        ("--threads", "0", "must be at least 1, got 0"),
        ("--threads", "100000", "must be at most 512, got 100000"),
        ("--kv-type", "q5_1", "expected one of f16, q8_0, q4_0, got 'q5_1'"),
        ("--flash-attn", "yes", "expected one of auto, on, off, got 'yes'"),
    ],
)
@pytest.mark.parametrize("save", [(), ("--no-save",)])
def test_a_bad_flag_is_a_usage_error_before_anything_is_saved(
    capsys: Capsys, isolated_env: Path, flag: str, value: str, problem: str, save: tuple[str, ...]
) -> None:
    refused(termllm(capsys, "ask", *save, flag, value, "My question"), f"{flag}: {problem}")
    nothing_saved(isolated_env)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("TERMLLM_GENERATION_TEMPERATURE", "nan", "must be a finite number, got nan"),
        ("TERMLLM_GENERATION_TEMPERATURE", "-3", "must be at least 0, got -3.0"),
        ("TERMLLM_GENERATION_TOP_P", "2.0", "must be at most 1, got 2.0"),
        ("TERMLLM_GENERATION_MIN_P", "inf", "must be a finite number, got inf"),
        ("TERMLLM_GENERATION_REPEAT_PENALTY", "-inf", "must be a finite number, got -inf"),
        ("TERMLLM_GENERATION_TOP_K", "-5", "must be at least 0, got -5"),
        ("TERMLLM_GENERATION_MAX_TOKENS", "-7", "must be at least 1 (or 0 for no limit), got -7"),
        ("TERMLLM_GENERATION_SEED", "-2", "must be at least 0 (or -1 for random), got -2"),
        (
            "TERMLLM_GENERATION_THINK_BUDGET",
            "-5",
            "must be at least 0 (or -1 for no limit), got -5",
        ),
        (
            "TERMLLM_GENERATION_THINK",
            "maybe",
            "expected one of auto, on, off, low, medium, high, got 'maybe'",
        ),
        ("TERMLLM_MODELS_CONTEXT_SIZE", "-5", "must be at least 64, got -5"),
        ("TERMLLM_MODELS_CONTEXT_SIZE", "0", "must be at least 64, got 0"),
        (
            "TERMLLM_MODELS_THREADS",
            "-4",
            "must be at least 1 (or 0 for the physical cores), got -4",
        ),
        ("TERMLLM_MODELS_THREADS", "513", "must be at most 512, got 513"),
        ("TERMLLM_CACHE_RAM_MB", "-1", "must be at least 0, got -1"),
        ("TERMLLM_CACHE_DISK_MB", "-1", "must be at least 0, got -1"),
        ("TERMLLM_MODELS_KV_CACHE_TYPE", "q2_k", "expected one of f16, q8_0, q4_0, got 'q2_k'"),
        ("TERMLLM_MODELS_FLASH_ATTENTION", "1", "expected one of auto, on, off, got '1'"),
    ],
)
def test_a_bad_variable_is_a_usage_error_naming_it(
    capsys: Capsys,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    problem: str,
) -> None:
    monkeypatch.setenv(variable, value)
    refused(termllm(capsys, "ask", "--no-save", "My question"), f"{variable}: {problem}")
    nothing_saved(isolated_env)


def write_config(home: Path, text: str) -> Path:
    path = home / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("section", "line", "message"),
    [
        ("generation", "temperature = nan", "generation.temperature: must be a finite number"),
        ("generation", "top_p = 2.0", "generation.top_p: must be at most 1, got 2.0"),
        ("generation", "max_tokens = -7", "generation.max_tokens: must be at least 1 (or 0 "),
        ("generation", "seed = 4294967295", "generation.seed: must be at most 4294967294"),
        ("models", "context_size = -5", "models.context_size: must be at least 64, got -5"),
        ("models", "threads = -4", "models.threads: must be at least 1 (or 0 for the physical"),
        ("generation", "top_k = -5", "generation.top_k: must be at least 0, got -5"),
        ("cache", "disk_mb = -1", "cache.disk_mb: must be at least 0, got -1"),
        ("models", 'kv_cache_type = "q8"', "models.kv_cache_type: expected one of f16, q8_0, q4_0"),
        ("models", "flash_attention = true", "models.flash_attention: expected str, got True"),
    ],
)
def test_a_bad_value_in_the_config_file_names_its_line(
    capsys: Capsys, isolated_env: Path, section: str, line: str, message: str
) -> None:
    path = write_config(isolated_env, f"# mine\n[{section}]\n\n{line}\n")
    result = termllm(capsys, "ask", "My question")
    assert (result.code, result.out, result.err.count("\n")) == (2, "", 1), result
    assert result.err.startswith(f"termllm: error: {path}:4: {message}"), result.err
    nothing_saved(isolated_env)


def test_an_integer_too_long_to_read_is_a_config_error(capsys: Capsys, isolated_env: Path) -> None:
    path = write_config(isolated_env, f"[models]\ncontext_size = {'9' * 5000}\n")
    result = termllm(capsys, "config", "show")
    assert (result.code, result.err.count("\n")) == (2, 1), result
    assert result.err.startswith(f"termllm: error: {path}: invalid TOML: Exceeds the limit")
    assert len(result.err) < 300


def test_the_config_words_for_none_are_accepted(capsys: Capsys, isolated_env: Path) -> None:
    write_config(
        isolated_env,
        "[generation]\nmax_tokens = 0\nseed = -1\nthink_budget = -1\ntop_p = 1\nmin_p = 0\n"
        "[models]\nthreads = 0\ncontext_size = 64\n[cache]\nram_mb = 0\n",
    )
    result = termllm(capsys, "config", "show", "--json")
    assert result.code == 0, result.err


@pytest.mark.parametrize("command", [("ask", "My question"), ("chat",)])
def test_an_empty_conversation_id_is_a_usage_error(
    capsys: Capsys, tmp_path: Path, command: tuple[str, ...]
) -> None:
    # With a conversation in the history, an empty id used to continue it (ask) or quietly open
    # a new one (chat).
    path = tmp_path / "one.json"
    path.write_text(json.dumps(exported({})), encoding="utf-8")
    assert termllm(capsys, "history", "import", str(path)).code == 0
    for cid in ("", "  "):
        refused(
            termllm(capsys, *command, "--cid", cid),
            "--cid: give a conversation id (or a unique prefix of one)",
        )
    shown = json.loads(termllm(capsys, "history", "show", "c000", "--json").out)
    assert len(shown["messages"]) == 1, "nothing was added to the conversation"


def exported(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "termllm.conversation",
        "version": 1,
        "conversation": {
            "id": "c000000001",
            "title": "t",
            "model": "SmolLM2-135M-Instruct.Q4_1",
            "system_prompt": None,
            "params": params,
            "created_at": 1_700_000_000.0,
            "updated_at": 1_700_000_000.0,
        },
        "messages": [
            {
                "id": "q000000001",
                "parent_id": None,
                "role": "user",
                "content": "Name a colour.",
                "model": None,
                "created_at": 1_700_000_000.0,
                "prompt_tokens": None,
                "completion_tokens": None,
                "timings": None,
                "finish_reason": None,
            }
        ],
    }


def test_an_import_with_a_non_finite_setting_adds_nothing(capsys: Capsys, tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    # Python's JSON writes (and reads) NaN, which no other JSON reader takes.
    path.write_text(json.dumps(exported({"temperature": float("nan")})), encoding="utf-8")
    result = termllm(capsys, "history", "import", str(path))
    assert (result.code, result.err.count("\n")) == (2, 1), result
    assert "conversation.params" in result.err
    assert json.loads(termllm(capsys, "history", "ls", "--json").out) == []


def test_imported_settings_out_of_range_fall_back_to_the_config(
    capsys: Capsys, tmp_path: Path, starter_model: Path
) -> None:
    hostile = {
        "temperature": -3,
        "top_p": 2.0,
        "top_k": -5,
        "seed": 2**40,
        "max_tokens": -7,
        "think_budget": -1,
        "n_ctx": 1_000_000_000,
    }
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(exported(hostile)), encoding="utf-8")
    assert termllm(capsys, "history", "import", str(path)).code == 0
    # The context is not out of range, but past the model's training: it is capped.
    result = termllm(capsys, "ask", "--cid", "c000", "--json", "--max-tokens", "4", "Another?")
    assert result.code == 0, result.err
    assert json.loads(result.out)["finish_reason"] in {"stop", "length"}
    trained = summarize(read_header(FileSource(starter_model))).context_length
    assert f"context capped at {trained} tokens, the model's trained context" in result.err


def test_the_context_is_capped_at_the_trained_one_unless_forced(starter_model: Path) -> None:
    trained = summarize(read_header(FileSource(starter_model))).context_length
    assert trained is not None
    capped = plan_load(LoadRequest(starter_model, n_ctx=1_000_000_000, threads=2))
    assert capped.n_ctx == trained
    assert capped.warnings[0] == (
        f"context capped at {trained} tokens, the model's trained context"
        " (1000000000 asked; --force-ctx keeps it)"
    )
    forced = plan_load(LoadRequest(starter_model, n_ctx=2 * trained, beyond_trained=True))
    assert (forced.n_ctx, forced.warnings) == (2 * trained, ())
    within = plan_load(LoadRequest(starter_model, n_ctx=trained // 2))
    assert (within.n_ctx, within.warnings) == (trained // 2, ())


def test_ctx_past_the_trained_context_is_capped_with_a_warning(
    capsys: Capsys, starter_model: Path
) -> None:
    result = termllm(
        capsys, "ask", "--no-save", "--ctx", "1000000000", "--max-tokens", "2", "-v", "Hi"
    )
    assert result.code == 0, result.err
    trained = summarize(read_header(FileSource(starter_model))).context_length
    assert f"context {trained} tokens" in result.err
    assert "context capped at" in result.err and "reduced" not in result.err


@pytest.mark.parametrize(
    ("command", "flags", "message"),
    [
        (
            ("ask", "My question"),
            ("--kv-type", "q8_0", "--flash-attn", "off"),
            "--flash-attn off with --kv-type q8_0",
        ),
        (
            ("bench",),
            ("--kv-type", "Q4_0", "--flash-attn", "OFF"),
            "--flash-attn off with --kv-type q4_0",
        ),
        (
            ("doctor", "-m", "x"),
            ("--flash-attn", "off"),
            "--flash-attn off with models.kv_cache_type q8_0",
        ),
        (("info", "x"), ("--flash-attn", "off"), "--flash-attn off with models.kv_cache_type q8_0"),
        (("chat",), ("--flash-attn", "off"), "--flash-attn off with models.kv_cache_type q8_0"),
    ],
)
def test_a_quantized_cache_without_flash_attention_is_refused_naming_both(
    capsys: Capsys,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
    flags: tuple[str, ...],
    message: str,
) -> None:
    # llama.cpp reads a quantized V cache only with flash attention: said before any load.
    if "--kv-type" not in flags:
        monkeypatch.setenv("TERMLLM_MODELS_KV_CACHE_TYPE", "q8_0")
    problem = "needs flash attention (on or auto)"
    kv = "q4_0" if "Q4_0" in flags else "q8_0"
    refused(termllm(capsys, *command, *flags), f"{message}: a {kv} KV cache {problem}")
    nothing_saved(isolated_env)


def test_a_conflict_in_the_variables_names_them(
    capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERMLLM_MODELS_KV_CACHE_TYPE", "q8_0")
    monkeypatch.setenv("TERMLLM_MODELS_FLASH_ATTENTION", "off")
    refused(
        termllm(capsys, "config", "show"),
        "TERMLLM_MODELS_FLASH_ATTENTION: models.flash_attention is off, but"
        " models.kv_cache_type is q8_0 (TERMLLM_MODELS_KV_CACHE_TYPE): a q8_0 KV cache needs"
        " flash attention (on or auto)",
    )


def test_a_conflict_in_the_config_file_names_the_file(capsys: Capsys, isolated_env: Path) -> None:
    path = write_config(isolated_env, '[models]\nkv_cache_type = "q4_0"\nflash_attention = "off"\n')
    refused(
        termllm(capsys, "config", "show"),
        f"{path}: models.flash_attention is off, but models.kv_cache_type is q4_0:"
        " a q4_0 KV cache needs flash attention (on or auto)",
    )


def test_a_quantized_cache_turns_flash_attention_on_when_auto(starter_model: Path) -> None:
    plan = plan_load(LoadRequest(starter_model, memory=MemoryOptions(KvCacheType.Q8_0)))
    assert (plan.memory.kv_type, plan.memory.flash) == (KvCacheType.Q8_0, True)
    assert not plan_load(LoadRequest(starter_model)).memory.flash
