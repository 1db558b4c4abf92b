"""Real chat templates kept as data (tests/data/templates/), and copies of the starter model that
carry one as their own, so that tests of template selection go through loading."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).parent / "data" / "templates"


@dataclass(frozen=True)
class RealTemplate:
    name: str
    """The file in tests/data/templates/ without ".jinja": the name llama.cpp gives it."""
    family: str
    """What termllm.gguf.summary.chat_template_family calls it."""
    markers: tuple[str, ...]
    """Text every prompt in this format holds."""
    generation_prompt: str
    """How the prompt ends when the assistant answers next."""

    @property
    def source(self) -> str:
        return template_source(self.name)


_CHATML = ("<|im_start|>system\n", "<|im_start|>user\n", "<|im_end|>\n")
_LLAMA3 = ("<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>")
# DeepSeek's bars are fullwidth (U+FF5C).
_DEEPSEEK = ("<\uff5cUser\uff5c>", "<\uff5cAssistant\uff5c>")

REAL_TEMPLATES = (
    RealTemplate(
        "NousResearch-Hermes-3-Llama-3.1-8B-tool_use", "chatml", _CHATML, "<|im_start|>assistant\n"
    ),
    RealTemplate("Qwen-Qwen2.5-7B-Instruct", "chatml", _CHATML, "<|im_start|>assistant\n"),
    RealTemplate("Qwen-Qwen3-0.6B", "chatml", _CHATML, "<|im_start|>assistant\n"),
    RealTemplate(
        "meta-llama-Llama-3.1-8B-Instruct",
        "llama3",
        _LLAMA3,
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    RealTemplate(
        "meta-llama-Llama-3.2-3B-Instruct",
        "llama3",
        _LLAMA3,
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    RealTemplate(
        "llama-cpp-microsoft-Phi-4-mini-instruct",
        "phi3",
        ("<|system|>", "<|user|>", "<|end|>"),
        "<|end|><|assistant|>",
    ),
    RealTemplate(
        "microsoft-Phi-3.5-mini-instruct",
        "phi3",
        ("<|system|>\n", "<|user|>\n", "<|end|>\n"),
        "<|end|>\n<|assistant|>\n",
    ),
    RealTemplate("mistralai-Mistral-Nemo-Instruct-2407", "mistral", ("[INST]",), "[/INST]"),
    RealTemplate(
        "Mistral-Small-3.2-24B-Instruct-2506",
        "mistral",
        ("[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[INST]"),
        "[/INST]",
    ),
    RealTemplate(
        "google-gemma-2-2b-it",
        "gemma",
        ("<start_of_turn>user\n", "<end_of_turn>\n"),
        "<end_of_turn>\n<start_of_turn>model\n",
    ),
    RealTemplate(
        "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
        "deepseek",
        _DEEPSEEK,
        "<\uff5cAssistant\uff5c><think>\n",
    ),
    RealTemplate(
        "ibm-granite-granite-3.3-2B-Instruct",
        "granite",
        ("<|start_of_role|>system<|end_of_role|>", "<|end_of_text|>\n"),
        "<|start_of_role|>assistant<|end_of_role|>",
    ),
)

BROKEN_TEMPLATE = "broken-syntax"
"""Made for these tests: ChatML with a syntax error on line 4."""


def template_source(name: str) -> str:
    return (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")


def opens_reasoning(directory: Path) -> Path:
    """A Jinja file: Qwen3's real template with its generation prompt opening the reasoning, as
    DeepSeek-R1's does. The starter model (trained on ChatML) writes on, and all it writes is
    reasoning: the way to exercise thinking budgets and folds with a real model."""
    qwen3 = template_source("Qwen-Qwen3-0.6B")
    source = qwen3.replace(
        "{{- '<|im_start|>assistant\\n' }}", "{{- '<|im_start|>assistant\\n<think>\\n' }}"
    )
    assert source != qwen3
    path = directory / "opens-reasoning.jinja"
    path.write_text(source, encoding="utf-8")
    return path


def embed_templates(model: Path, names: Iterable[str], directory: Path) -> dict[str, Path]:
    """Copies of `model` in `directory`, each with one template as its tokenizer.chat_template,
    named after it ("NAME.gguf"). gguf's own gguf-new-metadata script writes them."""
    copies = {name: directory / f"{name}.gguf" for name in names}
    # The script rewrites the whole model and parses its vocabulary in Python, seconds per
    # copy: the copies are made side by side.
    running = {
        name: _embed(model, TEMPLATES / f"{name}.jinja", path) for name, path in copies.items()
    }
    failures = []
    for name, process in running.items():
        _, stderr = process.communicate()
        if process.returncode != 0:
            failures.append(f"{name}: {stderr.strip()[-1000:]}")
    if failures:
        pytest.fail("gguf-new-metadata failed on " + "; ".join(failures))
    return copies


def _embed(model: Path, template: Path, output: Path) -> subprocess.Popen[str]:
    script = [sys.executable, "-m", "gguf.scripts.gguf_new_metadata", "--force"]
    return subprocess.Popen(
        [*script, "--chat-template-file", str(template), str(model), str(output)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
