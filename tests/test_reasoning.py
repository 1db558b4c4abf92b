"""The streaming reasoning parser: every format, fed in pieces of every size."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment
from template_models import REAL_TEMPLATES, template_source

from termllm.reasoning import (
    GEMMA_THOUGHT,
    HARMONY,
    SEED_THINK,
    THINK,
    Kind,
    Piece,
    ReasoningFormat,
    ReasoningParser,
    detect_format,
    parse_cost,
)

INSIDE = replace(THINK, starts_inside=True)


def parse(fmt: ReasoningFormat, chunks: Iterable[str]) -> tuple[str, str]:
    """The reasoning and the answer the parser makes of the output streamed as `chunks`."""
    parser = ReasoningParser(fmt)
    pieces: list[Piece] = []
    for chunk in chunks:
        pieces += parser.feed(chunk)
    pieces += parser.finish()
    assert all(piece.text for piece in pieces), pieces
    reasoning = "".join(p.text for p in pieces if p.kind is Kind.REASONING)
    answer = "".join(p.text for p in pieces if p.kind is Kind.ANSWER)
    return reasoning, answer


# (format, output, reasoning, answer)
STREAMS: dict[str, tuple[ReasoningFormat, str, str, str]] = {
    "think": (
        THINK,
        "<think>\nLet me see: 2 < 3.\n</think>\n\nYes, 2 < 3.\n",
        "Let me see: 2 < 3.\n",
        "Yes, 2 < 3.\n",
    ),
    "think-after-whitespace": (THINK, "\n <think>plan</think>answer", "plan", "answer"),
    "think-empty-block": (THINK, "<think>\n\n</think>\n\nHello.", "", "Hello."),
    "think-unclosed": (THINK, "<think>\nstill thinking <", "still thinking <", ""),
    "think-partial-close-at-end": (THINK, "<think>abc</thi", "abc</thi", ""),
    "think-tags-after-the-block": (
        THINK,
        "<think>a</think>b</think> and <think>c</think>",
        "a",
        "b</think> and <think>c</think>",
    ),
    # A budget closed the block, then the model closed it too.
    "think-closed-twice": (
        THINK,
        "<think>a\n</think>\n\n</think>\n\nB </think>",
        "a\n",
        "B </think>",
    ),
    "think-closed-twice-at-end": (THINK, "<think>a</think>\n</thi", "a", "</thi"),
    "plain": (THINK, "Hello, world.\n\nBye.", "", "Hello, world.\n\nBye."),
    "plain-byte-exact": (THINK, "\n  indented\n", "", "\n  indented\n"),
    "plain-mentions-the-tag": (THINK, "Write <think> first.", "", "Write <think> first."),
    "plain-partial-tag-at-end": (THINK, " <thi", "", " <thi"),
    "plain-unicode": (THINK, "héllo 🙂 <", "", "héllo 🙂 <"),
    "inside": (INSIDE, "Reasoning.\n</think>\n\nAnswer.", "Reasoning.\n", "Answer."),
    "inside-tag-written-again": (
        INSIDE,
        "\n<think>\nReasoning.\n</think>\n\nAnswer.",
        "Reasoning.\n",
        "Answer.",
    ),
    "inside-closed-at-once": (INSIDE, "\n</think>\n\nAnswer.", "", "Answer."),
    "inside-unclosed": (INSIDE, "\nall of it is reasoning", "all of it is reasoning", ""),
    "inside-partial-tag-at-end": (INSIDE, "\n<thi", "<thi", ""),
    "seed": (
        SEED_THINK,
        "<seed:think>Budget <seed:cot_budget_reflect>fine</seed:cot_budget_reflect>"
        " <think>x</think></seed:think>Answer.",
        "Budget <seed:cot_budget_reflect>fine</seed:cot_budget_reflect> <think>x</think>",
        "Answer.",
    ),
    "gemma": (GEMMA_THOUGHT, "<|channel>thought\nPlan.<channel|>Answer.", "Plan.", "Answer."),
    "harmony": (
        HARMONY,
        "<|channel|>analysis<|message|>User asks 2+2. Easy.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|return|>",
        "User asks 2+2. Easy.",
        "2 + 2 = 4.",
    ),
    "harmony-commentary": (
        HARMONY,
        "<|channel|>analysis<|message|>Need weather.<|end|>"
        "<|start|>assistant<|channel|>commentary<|message|>Checking.<|end|>"
        "<|start|>assistant<|channel|>analysis<|message|>Got it.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>Sunny.",
        "Need weather.\n\nChecking.\n\nGot it.",
        "Sunny.",
    ),
    "harmony-tool-call": (
        HARMONY,
        "<|channel|>commentary to=functions.get_weather <|constrain|>json"
        '<|message|>{"city": "Paris"}<|call|>',
        '{"city": "Paris"}',
        "",
    ),
    "harmony-constrain": (
        HARMONY,
        "<|channel|>analysis<|message|>JSON wanted.<|end|>"
        '<|start|>assistant<|channel|>final <|constrain|>json<|message|>{"a": 1}<|return|>',
        "JSON wanted.",
        '{"a": 1}',
    ),
    "harmony-final-only": (
        HARMONY,
        "<|channel|>final<|message|>\n\nJust this, <|x|> and <|.",
        "",
        "Just this, <|x|> and <|.",
    ),
    "harmony-end-skipped": (
        HARMONY,
        "<|channel|>analysis<|message|>A<|start|>assistant<|channel|>final<|message|>B",
        "A",
        "B",
    ),
    "harmony-no-channel": (HARMONY, "<|start|>assistant<|message|>Hi.<|end|>", "", "Hi."),
    "harmony-unclosed": (HARMONY, "<|channel|>analysis<|message|>Hmm <|en", "Hmm <|en", ""),
    "harmony-cut-in-header": (HARMONY, "<|channel|>analysis<|mess", "", ""),
}


def _expected(name: str) -> tuple[ReasoningFormat, str, tuple[str, str]]:
    fmt, output, reasoning, answer = STREAMS[name]
    return fmt, output, (reasoning, answer)


@pytest.mark.parametrize("name", STREAMS)
def test_whole_output(name: str) -> None:
    fmt, output, expected = _expected(name)
    assert parse(fmt, [output]) == expected


@pytest.mark.parametrize("name", STREAMS)
def test_every_two_way_split(name: str) -> None:
    fmt, output, expected = _expected(name)
    for cut in range(len(output) + 1):
        assert parse(fmt, [output[:cut], output[cut:]]) == expected, cut


@pytest.mark.parametrize("name", STREAMS)
def test_one_character_at_a_time(name: str) -> None:
    fmt, output, expected = _expected(name)
    assert parse(fmt, output) == expected


@pytest.mark.parametrize("name", STREAMS)
def test_random_splits(name: str) -> None:
    fmt, output, expected = _expected(name)
    rng = random.Random(name)
    for _ in range(200):
        cuts = sorted(rng.sample(range(len(output) + 1), rng.randint(1, min(8, len(output)))))
        chunks = [output[a:b] for a, b in zip([0, *cuts], [*cuts, len(output)], strict=True)]
        assert parse(fmt, chunks) == expected, chunks


def test_reasoning_streams_without_waiting_for_the_close_tag() -> None:
    parser = ReasoningParser(THINK)
    assert parser.feed("<think>\n") == []
    assert parser.feed("first ") == [Piece(Kind.REASONING, "first ")]
    # Only what may start the close tag is held back.
    assert parser.feed("idea </th") == [Piece(Kind.REASONING, "idea ")]
    assert parser.feed("ink>\n\nAnswer") == [Piece(Kind.ANSWER, "Answer")]


def test_one_chunk_may_hold_both_kinds() -> None:
    parser = ReasoningParser(THINK)
    assert parser.feed("<think>a</think>b") == [Piece(Kind.REASONING, "a"), Piece(Kind.ANSWER, "b")]


def test_plain_answer_is_not_held_back() -> None:
    parser = ReasoningParser(THINK)
    assert parser.feed("Hi") == [Piece(Kind.ANSWER, "Hi")]
    assert parser.feed(" <think>") == [Piece(Kind.ANSWER, " <think>")]


def _states(fmt: ReasoningFormat, chunks: Sequence[str]) -> list[tuple[bool, bool]]:
    parser = ReasoningParser(fmt)
    states = [(parser.in_reasoning, parser.answer_started)]
    for chunk in chunks:
        parser.feed(chunk)
        states.append((parser.in_reasoning, parser.answer_started))
    return states


def test_state_for_think_tags() -> None:
    chunks = ["<think>", "hm", "</think>\n", "\n", "Yes"]
    assert _states(THINK, chunks) == [
        (False, False),
        (True, False),
        (True, False),
        (False, False),
        (False, False),
        (False, True),
    ]


def test_state_when_the_prompt_opened_the_reasoning() -> None:
    assert _states(INSIDE, ["hm", "</think>", "Yes"]) == [
        (True, False),
        (True, False),
        (False, False),
        (False, True),
    ]


def test_state_for_harmony() -> None:
    chunks = ["<|channel|>analysis<|message|>", "hm", "<|end|><|start|>assistant", "<|channel|>"]
    chunks += ["final<|message|>", "Yes"]
    assert _states(HARMONY, chunks) == [
        (False, False),
        (True, False),
        (True, False),
        (False, False),
        (False, False),
        (False, False),
        (False, True),
    ]


def test_state_for_a_plain_model() -> None:
    assert _states(THINK, ["Hello"]) == [(False, False), (False, True)]


@pytest.mark.parametrize(
    ("fmt", "opening"),
    [
        (THINK, "<think>\n"),
        (INSIDE, ""),
        (SEED_THINK, "<seed:think>"),
        (GEMMA_THOUGHT, "<|channel>thought\n"),
        (HARMONY, "<|channel|>analysis<|message|>"),
    ],
)
def test_close_text_ends_the_reasoning(fmt: ReasoningFormat, opening: str) -> None:
    """A budget injects `close_text` into the model's context and feeds it here too."""
    parser = ReasoningParser(fmt)
    parser.feed(opening + "thinking on and on")
    assert parser.in_reasoning
    pieces = parser.feed(fmt.close_text)
    assert not parser.in_reasoning
    assert parser.feed("The answer.") == [Piece(Kind.ANSWER, "The answer.")]
    # The close text reaches no output, bar the newline before a close tag, which is reasoning.
    assert all(p.kind is Kind.REASONING and not p.text.strip() for p in pieces + parser.finish())


# -- detect_format ----------------------------------------------------------------------------


def render(source: str, **variables: Any) -> str:
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return environment.from_string(source).render(bos_token="<s>", eos_token="</s>", **variables)


def generation_prompt(source: str, **variables: Any) -> str:
    """What the template adds when the assistant answers next."""
    messages = [{"role": "user", "content": "Hi"}]
    with_prompt = render(source, messages=messages, add_generation_prompt=True, **variables)
    without = render(source, messages=messages, add_generation_prompt=False, **variables)
    assert with_prompt.startswith(without)
    return with_prompt[len(without) :]


def test_detect_qwen3() -> None:
    source = template_source("Qwen-Qwen3-0.6B")
    assert generation_prompt(source) == "<|im_start|>assistant\n"
    assert detect_format(source, generation_prompt(source)) == THINK
    # Thinking off: the template writes an empty block, the model answers straight away.
    off = generation_prompt(source, enable_thinking=False)
    assert off.endswith("<think>\n\n</think>\n\n")
    assert detect_format(source, off) == THINK


def test_detect_deepseek_r1_distill() -> None:
    source = template_source("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B")
    tail = generation_prompt(source)
    assert tail.endswith("<think>\n")
    assert detect_format(source, tail) == INSIDE


@pytest.mark.parametrize("template", REAL_TEMPLATES, ids=lambda t: t.name)
def test_detect_every_real_template(template: Any) -> None:
    """Templates that do not reason get the lenient default; DeepSeek opens its block."""
    found = detect_format(template.source, template.generation_prompt)
    assert found == (INSIDE if template.family == "deepseek" else THINK)


def test_detect_without_a_template() -> None:
    assert detect_format(None, "") == THINK
    assert detect_format(None, "<|im_start|>assistant\n<think>\n") == INSIDE


# Excerpts of the reasoning parts of real templates (llama.cpp's models/templates/).
GPT_OSS = """{{- "<|start|>system<|message|>" }}Reasoning: {{ reasoning_effort }}<|end|>
{%- for message in messages -%}
{%- if "thinking" in message %}
{{- "<|start|>assistant<|channel|>analysis<|message|>" + message.thinking + "<|end|>" }}
{%- endif %}
{{- "<|start|>" + message.role + "<|message|>" + message.content + "<|end|>" }}
{%- endfor -%}
{%- if add_generation_prompt -%}
<|start|>assistant
{%- endif -%}"""

SEED_OSS = """{%- set think_begin_token = '<seed:think>' -%}
{%- set think_end_token = '</seed:think>' -%}
{%- set budget_begin_token = '<seed:cot_budget_reflect>'-%}
{%- for message in messages -%}
{{ '<seed:bos>' + message.role + "\\n" + message.content + '<seed:eos>' }}
{%- endfor -%}
{%- if add_generation_prompt %}
{{ '<seed:bos>' + "assistant\\n" }}
{%- if thinking_budget == 0 %}
{{ think_begin_token + budget_begin_token }}
{%- endif %}
{%- endif %}"""

GEMMA_4 = """{%- macro strip_thinking(text) -%}
{%- for part in text.split('<channel|>') -%}{{ part.split('<|channel>')[0] }}{%- endfor -%}
{%- endmacro -%}
{%- for message in messages -%}
{{ '<|turn>' + message.role + '\\n' + strip_thinking(message.content) + '<turn|>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|turn>model\\n' -}}
{%- if not enable_thinking | default(false) -%}{{- '<|channel>thought\\n<channel|>' -}}{%- endif -%}
{%- endif -%}"""

NEMOTRON_NANO_2 = """{%- for message in messages -%}
{{- '<SPECIAL_11>User\\n' + message.content + '\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<SPECIAL_11>Assistant\\n' -}}
{%- if enable_thinking is defined and enable_thinking is false -%}{{- '<think></think>' -}}
{%- else -%}{{- '<think>\\n\\n' -}}{%- endif -%}
{%- endif -%}"""

MINIMAX_M2 = """{%- for message in messages -%}
{{- ']~b]' ~ message.role ~ '\\n' ~ message.content ~ '[e~[\\n' }}
{%- if message.reasoning_content -%}
{{- '<think>' ~ '\\n' ~ message.reasoning_content ~ '\\n' ~ '</think>' ~ '\\n\\n' }}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- ']~b]ai' ~ '\\n' ~ '<think>' ~ '\\n' }}{%- endif -%}"""

GLM_4_5 = """{%- for m in messages -%}<|{{ m.role }}|>
{{ m.content }}{%- endfor -%}
{%- if add_generation_prompt -%}
<|assistant|>
{{- '\\n<think></think>' if (enable_thinking is defined and not enable_thinking) else '' -}}
{%- endif -%}"""

KIMI_K2_THINKING = """{%- for message in messages -%}
<|im_user|>{{ message.role }}<|im_middle|>{{ message.content }}<|im_end|>
{%- endfor -%}
<think></think>
{%- if add_generation_prompt -%}<|im_assistant|>assistant<|im_middle|>{%- endif -%}"""

SEED_INSIDE = replace(SEED_THINK, starts_inside=True)


@pytest.mark.parametrize(
    ("source", "variables", "expected"),
    [
        pytest.param(GPT_OSS, {"reasoning_effort": "low"}, HARMONY, id="gpt-oss"),
        pytest.param(SEED_OSS, {}, SEED_THINK, id="seed-oss"),
        # Thinking off opens the block with a budget note the model closes itself.
        pytest.param(SEED_OSS, {"thinking_budget": 0}, SEED_INSIDE, id="seed-oss-budget-0"),
        pytest.param(GEMMA_4, {"enable_thinking": True}, GEMMA_THOUGHT, id="gemma-4"),
        pytest.param(GEMMA_4, {}, GEMMA_THOUGHT, id="gemma-4-thinking-off"),
        pytest.param(NEMOTRON_NANO_2, {}, INSIDE, id="nemotron-nano-2"),
        pytest.param(NEMOTRON_NANO_2, {"enable_thinking": False}, THINK, id="nemotron-off"),
        pytest.param(MINIMAX_M2, {}, INSIDE, id="minimax-m2"),
        pytest.param(GLM_4_5, {}, THINK, id="glm-4.5"),
        pytest.param(GLM_4_5, {"enable_thinking": False}, THINK, id="glm-4.5-off"),
        pytest.param(KIMI_K2_THINKING, {}, THINK, id="kimi-k2-thinking"),
    ],
)
def test_detect_template_excerpts(
    source: str, variables: dict[str, Any], expected: ReasoningFormat
) -> None:
    assert detect_format(source, generation_prompt(source, **variables)) == expected


def test_a_tag_in_the_question_does_not_open_the_reasoning() -> None:
    prompt = "<|im_start|>user\nWhat does <think> do?<|im_end|>\n<|im_start|>assistant\n"
    assert detect_format(template_source("Qwen-Qwen3-0.6B"), prompt) == THINK


def test_parse_cost_measures_per_chunk() -> None:
    """Only that it runs: the benchmark reports the numbers, tests do not time anything."""
    assert parse_cost(THINK, "<think>a</think>" + "word " * 100) > 0
