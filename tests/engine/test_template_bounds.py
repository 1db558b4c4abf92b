"""Chat templates from model files are code from strangers: rendering them is bounded in time
and size, whether they loop, multiply, or build their output a piece at a time."""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import pytest
from hostile_gguf import rewrite, text
from jinja2 import Undefined
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from template_models import REAL_TEMPLATES, RealTemplate
from termllm_cli import termllm_process

from termllm.domain import Message, Role
from termllm.engine.base import LoadRequest
from termllm.engine.llama_backend import LlamaEngine
from termllm.engine.template_bounds import TemplateBoundError
from termllm.engine.templates import ChatTemplate, Vocabulary, fold_system
from termllm.errors import GenerationError, ModelLoadError

CONVERSATION = (
    Message(Role.SYSTEM, "Be brief."),
    Message(Role.USER, "Hi"),
    Message(Role.ASSISTANT, "Hello!"),
    Message(Role.USER, "Bye"),
)
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
NESTED_LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
TOO_LONG = "it builds a value of"

# Each of these hung termllm or took gigabytes before; the reason each must fail with.
HOSTILE = {
    "nested loops": (NESTED_LOOPS, "it ran for over 1 s"),
    "a loop over a list": (
        "{% set l = range(100000)|list %}{% for a in l %}{% for b in l %}{% endfor %}{% endfor %}",
        "it ran for over 1 s",
    ),
    "doubling recursion": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(60) }}",
        "it ran for over 1 s",
    ),
    "repetition": ("{{ 'x' * 100000000 }}", TOO_LONG),
    "repeated list": ("{{ ['x'] * 100000000 }}", TOO_LONG),
    "doubling with +": (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}{{ ns.s }}",
        TOO_LONG,
    ),
    "doubling with ~": (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s }}",
        TOO_LONG,
    ),
    "a big power": ("{{ 3 ** 1000000000 }}", "it builds an integer of"),
    "a width in %": ("{{ '%01000000000d' % 1 }}", TOO_LONG),
    "a width from an argument in %": ("{{ '%*d' % (1000000000, 1) }}", TOO_LONG),
    "a width in str.format": ("{{ '{:>1000000000}'.format(1) }}", TOO_LONG),
    "a nested width in str.format": ("{{ '{:>{}}'.format(1, 1000000000) }}", TOO_LONG),
    "the center filter": ("{{ 'x'|center(1000000000) }}", TOO_LONG),
    "a str method": ("{{ 'x'.ljust(1000000000) }}", TOO_LONG),
    "an int method": ("{{ (1).to_bytes(1000000000, 'big') }}", TOO_LONG),
    "replacing the empty string": ("{{ ('x' * 100000)|replace('', 'y' * 100) }}", TOO_LONG),
    "tabs": ("{{ ('\\t' * 100000).expandtabs(100000) }}", TOO_LONG),
    "indentation": ("{{ ('\\n' * 100000)|indent('x' * 100000) }}", TOO_LONG),
    "slices": ("{{ range(1)|slice(1000000000)|list|length }}", TOO_LONG),
    "a filled batch": ("{{ range(1)|batch(1000000000, 'x')|list|length }}", TOO_LONG),
    "a sum of lists": ("{{ ([[1]] * 100000)|sum(start=[])|length }}", TOO_LONG),
    "json indentation": ("{{ [1, [2, [3]]]|tojson(indent=10000000) }}", TOO_LONG),
    "a list of big strings, written": (
        "{% set s = 'a' * 1000000 %}{{ [s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s] }}",
        TOO_LONG,
    ),
    "output in a loop": (
        "{% for i in range(100000) %}{{ 'y' * 10000 }}{% endfor %}",
        "its output passes",
    ),
    "text in a loop": ("{% for i in range(100000) %}" + "z" * 10000 + "{% endfor %}", "its output"),
    "output captured by set": (
        "{% set x %}{% for i in range(100000) %}{% for j in range(100) %}abcdefgh{% endfor %}"
        "{% endfor %}{% endset %}{{ x|length }}",
        "its output passes",
    ),
    "values made and dropped": (
        "{{ range(100000)|map('string')|map('center', 100000)|join }}",
        "characters of values in all",
    ),
    "values nested deep": ("{{ " + "[" * 40 + "]" * 40 + " }}", "it nests values over 32 deep"),
    "lipsum": ("{{ lipsum(100000) }}", "'lipsum' is undefined"),
    "an empty prompt": ("{{ '' }}", "it renders an empty prompt"),
}


def vocabulary() -> Vocabulary:
    return Vocabulary("<s>", "</s>", lambda _: False)


@pytest.mark.parametrize(("source", "reason"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_template_fails_with_its_reason(source: str, reason: str) -> None:
    template = ChatTemplate(source, "gguf", (), vocabulary())

    with pytest.raises(GenerationError) as caught:
        template.render(CONVERSATION)

    message = str(caught.value)
    assert message.startswith("the chat template failed to render: "), message
    assert reason in message


@pytest.mark.parametrize(
    "name", ["repetition", "a width in str.format", "the center filter", "a big power"]
)
def test_a_value_too_big_is_refused_before_it_is_built(name: str) -> None:
    template = ChatTemplate(HOSTILE[name][0], "gguf", (), vocabulary())
    tracemalloc.start()
    try:
        with pytest.raises(GenerationError):
            template.render(CONVERSATION)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20


def test_a_template_too_long_to_compile_is_refused() -> None:
    with pytest.raises(TemplateBoundError, match="it is 1,000,010 characters long"):
        ChatTemplate("{{ 'hi' }}" + " " * 1_000_000, "gguf", (), vocabulary())


def test_a_huge_message_from_the_template_is_quoted_short() -> None:
    template = ChatTemplate("{{ raise_exception('no ' * 300000) }}", "gguf", (), vocabulary())

    with pytest.raises(GenerationError) as caught:
        template.render(CONVERSATION)

    assert str(caught.value).startswith("the chat template failed to render: no no no")
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize("real", REAL_TEMPLATES, ids=lambda real: real.name)
def test_real_templates_render_as_in_llama_cpp_python(real: RealTemplate) -> None:
    formatter = Jinja2ChatFormatter(template=real.source, eos_token="</s>", bos_token="<s>")
    unset = {name: Undefined(name=name) for name in ("tools", "tool_choice", "functions")}

    def unbounded(messages: Sequence[Message]) -> str:
        chat = [{"role": m.role.value, "content": m.content} for m in messages]
        return str(formatter(messages=chat, function_call=Undefined(), **unset).prompt)

    try:
        expected = unbounded(CONVERSATION)
    except Exception:  # a template without a system turn: termllm folds it in too
        expected = unbounded(fold_system(CONVERSATION))
    assert ChatTemplate(real.source, real.name, (), vocabulary()).render(CONVERSATION) == expected


def test_the_bounds_grow_with_the_conversation() -> None:
    # A pasted file of 3 MB is three times the output a short conversation may have.
    long = (*CONVERSATION[:3], Message(Role.USER, "word " * 600_000))
    template = ChatTemplate(REAL_TEMPLATES[1].source, "gguf", (), vocabulary())

    assert len(template.render(long)) > 3_000_000


def test_a_template_that_blows_up_later_fails_that_turn() -> None:
    # Fine for the probe conversation at load, hostile from the third question on.
    source = "{% if messages|length > 5 %}{{ 'x' * 100000000 }}{% endif %}" + CHATML
    template = ChatTemplate(source, "gguf", (), vocabulary())
    template.render(CONVERSATION)

    with pytest.raises(GenerationError, match="it builds a value of 100,000,000 characters"):
        template.render((*CONVERSATION, Message(Role.ASSISTANT, "Bye!"), Message(Role.USER, "?")))


# Through the real model: what `ask` and the app load.


@pytest.fixture(scope="module")
def hostile_models(starter_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile-templates")
    for name, source in {
        "loops": NESTED_LOOPS,
        "multiply": HOSTILE["repetition"][0],
        "empty": "",
    }.items():
        rewrite(starter_model, folder / f"{name}.gguf", {"tokenizer.chat_template": text(source)})
    return folder


@pytest.mark.parametrize(
    ("name", "warning"),
    [
        (
            "loops",
            "loops.gguf's chat template failed to render (it ran for over 1 s); using chatml",
        ),
        (
            "multiply",
            "multiply.gguf's chat template failed to render (it builds a value of 100,000,000 "
            "characters (the limit is 1,048,",
        ),
        ("empty", "empty.gguf has an empty chat template; using chatml"),
    ],
)
def test_a_model_with_a_hostile_template_loads_with_a_builtin(
    hostile_models: Path, name: str, warning: str
) -> None:
    request = LoadRequest(hostile_models / f"{name}.gguf", n_ctx=512, threads=2)
    model = LlamaEngine().load(request)
    try:
        assert model.report.chat_template == "chatml"
        assert any(w.startswith(warning) for w in model.report.warnings), model.report.warnings
    finally:
        model.close()


def test_ask_answers_with_a_model_whose_template_never_ends(hostile_models: Path) -> None:
    result = termllm_process(
        "ask", "-m", str(hostile_models / "loops.gguf"), "--no-save", "--max-tokens", "4", "Hi"
    )

    assert result.code == 0, result.err
    assert result.out.strip()
    assert "chat template failed to render (it ran for over 1 s); using chatml" in result.err


def test_ask_with_an_empty_template_answers(hostile_models: Path) -> None:
    # It used to fail with "generation failed: generation failed: " and no reason.
    result = termllm_process(
        "ask", "-m", str(hostile_models / "empty.gguf"), "--no-save", "--max-tokens", "4", "Hi"
    )

    assert result.code == 0, result.err
    assert result.out.strip()
    assert "empty.gguf has an empty chat template; using chatml" in result.err


def test_a_hostile_template_file_asked_for_is_a_load_error(
    starter_model: Path, tmp_path: Path
) -> None:
    path = tmp_path / "loops.jinja"
    path.write_text(NESTED_LOOPS, encoding="utf-8")

    with pytest.raises(ModelLoadError, match=r"bad chat template .*: it ran for over 1 s"):
        LlamaEngine().load(LoadRequest(starter_model, n_ctx=512, chat_template=str(path)))
