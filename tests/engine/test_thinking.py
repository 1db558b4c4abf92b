"""Thinking models through the real engine: the think setting reaches the template as it
intends, earlier reasoning never comes back as content, and the real starter model, behind a
template that opens the reasoning in the generation prompt, exercises the budget and the
"ran out while thinking" path."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from template_models import embed_templates, opens_reasoning, template_source

from termllm.domain import Completion, FinishReason, GenParams, Message, Role, TextChunk, Think
from termllm.engine.llama_backend import LlamaEngine, LlamaModel
from termllm.engine.templates import ChatTemplate, Vocabulary
from termllm.engine.thinking import ThinkControls, template_controls, think_variables
from termllm.reasoning import HARMONY, THINK, HarmonyFormat, TagFormat

QWEN3 = "Qwen-Qwen3-0.6B"
DEEPSEEK_R1 = "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B"
GPT_OSS = "openai-gpt-oss-120b"

QUESTION = Message(Role.USER, "Write a long story about a dragon who learns to bake bread.")
GREEDY = GenParams(temperature=0.0, seed=1)


def rendered(name: str, messages: list[Message], think: Think) -> str:
    source = template_source(name)
    template = ChatTemplate(source, "gguf", (), Vocabulary("<s>", "</s>", lambda _: False))
    variables, _ = think_variables(template_controls(source), think)
    return template.render(messages, variables)


def test_qwen3_thinks_unless_told_not_to() -> None:
    assert template_controls(template_source(QWEN3)) == ThinkControls(switch="enable_thinking")
    for think in (Think.AUTO, Think.ON):
        assert rendered(QWEN3, [QUESTION], think).endswith("<|im_start|>assistant\n")
    off = rendered(QWEN3, [QUESTION], Think.OFF)
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_gpt_oss_takes_an_effort_level() -> None:
    controls = template_controls(template_source(GPT_OSS))
    assert controls == ThinkControls(effort=True)
    assert "Reasoning: medium" in rendered(GPT_OSS, [QUESTION], Think.AUTO)
    for level in ("low", "high"):
        assert f"Reasoning: {level}" in rendered(GPT_OSS, [QUESTION], Think(level))
    variables, note = think_variables(controls, Think.OFF)
    assert variables == {"reasoning_effort": "low"}
    assert note == "this model cannot turn its thinking off: thinking at low effort"


def test_a_template_without_a_switch_says_so() -> None:
    controls = template_controls(template_source(DEEPSEEK_R1))
    assert not controls.steerable
    assert think_variables(controls, Think.AUTO) == ({}, None)
    assert think_variables(controls, Think.OFF) == (
        {},
        "this model's thinking cannot be changed (think off is ignored)",
    )
    assert think_variables(ThinkControls(switch="enable_thinking"), Think.HIGH) == (
        {"enable_thinking": True},
        "this model's thinking has no levels: thinking on (for think high)",
    )


@pytest.mark.parametrize("name", [QWEN3, DEEPSEEK_R1, GPT_OSS])
def test_earlier_reasoning_never_reaches_the_prompt_as_content(name: str) -> None:
    answered = Message(Role.ASSISTANT, "Bread needs time.", reasoning="SECRET-REASONING")
    prompt = rendered(name, [QUESTION, answered, Message(Role.USER, "And then?")], Think.AUTO)
    assert "Bread needs time." in prompt
    # Each of these templates leaves the reasoning of earlier turns out.
    assert "SECRET-REASONING" not in prompt


@pytest.fixture(scope="module")
def thinking_models(
    starter_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    return embed_templates(
        starter_model, (QWEN3, DEEPSEEK_R1, GPT_OSS), tmp_path_factory.mktemp("thinking")
    )


def loaded(path: Path, chat_template: str | None = None) -> LlamaModel:
    from termllm.engine.base import LoadRequest

    return LlamaEngine().load(LoadRequest(path, n_ctx=1024, threads=2, chat_template=chat_template))


@pytest.mark.parametrize(
    ("name", "controls", "reasoning"),
    [
        (QWEN3, ThinkControls(switch="enable_thinking"), THINK),
        (DEEPSEEK_R1, ThinkControls(), TagFormat("<think>", "</think>", starts_inside=True)),
        (GPT_OSS, ThinkControls(effort=True), HARMONY),
    ],
)
def test_the_embedded_template_decides_the_controls_and_the_format(
    thinking_models: dict[str, Path],
    name: str,
    controls: ThinkControls,
    reasoning: TagFormat | HarmonyFormat,
) -> None:
    model = loaded(thinking_models[name])
    try:
        assert model.report.chat_template == "gguf"
        assert model.report.think_controls == controls
        assert model._reasoning_format(Think.AUTO) == reasoning
        if name == QWEN3:
            # Thinking off closes an empty block in the generation prompt: more tokens.
            on = model.count_prompt_tokens([QUESTION], Think.ON)
            assert model.count_prompt_tokens([QUESTION], Think.OFF) > on
    finally:
        model.close()


@pytest.fixture(scope="module")
def reasoner(starter_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaModel]:
    template = opens_reasoning(tmp_path_factory.mktemp("opens"))
    model = loaded(starter_model, str(template))
    yield model
    model.close()


def stream(
    model: LlamaModel, messages: list[Message], params: GenParams
) -> tuple[list[TextChunk], Completion]:
    chunks = list(model.stream_chat(messages, params, threading.Event()))
    end = chunks[-1]
    assert isinstance(end, Completion)
    return [c for c in chunks if isinstance(c, TextChunk)], end


def test_running_out_of_tokens_while_thinking_is_said(reasoner: LlamaModel) -> None:
    reasoner.clear_state()
    texts, end = stream(reasoner, [QUESTION], GenParams(temperature=0.0, seed=1, max_tokens=8))
    assert end.finish_reason is FinishReason.LENGTH
    assert end.content == "" and end.reasoning
    assert end.ended_thinking
    assert end.usage.reasoning_tokens == end.usage.completion_tokens == 8
    assert texts and all(chunk.reasoning for chunk in texts)
    assert "".join(chunk.text for chunk in texts).rstrip() == end.reasoning


def test_a_thinking_budget_closes_the_reasoning_and_the_answer_comes(
    reasoner: LlamaModel,
) -> None:
    reasoner.clear_state()
    params = GenParams(temperature=0.0, seed=1, max_tokens=48, think_budget=6)
    texts, end = stream(reasoner, [QUESTION], params)
    kinds = [chunk.reasoning for chunk in texts]
    # Reasoning first, then only answer: the budget closed the block for good.
    assert kinds == sorted(kinds, reverse=True)
    assert end.reasoning and end.content, end
    assert not end.ended_thinking
    # The budget's tokens, and the few that close the block.
    assert 6 < end.usage.reasoning_tokens <= 6 + 8
    assert end.usage.completion_tokens > end.usage.reasoning_tokens
    assert "</think>" not in end.content and "</think>" not in end.reasoning


def test_continuing_a_thinking_conversation_reuses_all_but_the_last_answer(
    reasoner: LlamaModel,
) -> None:
    reasoner.clear_state()
    params = GenParams(temperature=0.0, seed=1, max_tokens=24, think_budget=6)
    _, first = stream(reasoner, [QUESTION], params)
    assert first.reasoning and first.content
    read = reasoner.save_state()
    assert read is not None
    answered = Message(Role.ASSISTANT, first.content, reasoning=first.reasoning)
    follow_up = [QUESTION, answered, Message(Role.USER, "Give it a title.")]
    reusable = reasoner.shared_prefix(follow_up, read.tokens)
    _, second = stream(reasoner, follow_up, params)
    assert second.timings.cached_tokens == reusable
    # The template leaves the earlier reasoning out, so the new prompt parts from what the
    # model read where that answer's reasoning opened (`<think>\n`: at most 4 tokens here):
    # the question before it is reused, the answer and what is new are read.
    assert reusable >= reasoner.count_prompt_tokens([QUESTION]) - 5
