"""Chat template selection, fallback and overrides: rendering alone, then with the real model."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from pathlib import Path

import llama_cpp
import pytest
from template_models import BROKEN_TEMPLATE, REAL_TEMPLATES, RealTemplate, embed_templates

from termllm.domain import Completion, FinishReason, GenParams, Message, Role
from termllm.engine.base import LoadReport, LoadRequest
from termllm.engine.llama_backend import LlamaEngine
from termllm.engine.templates import (
    BUILTIN_TEMPLATES,
    ChatTemplate,
    Vocabulary,
    fold_system,
    select_template,
)
from termllm.errors import GenerationError, ModelLoadError
from termllm.gguf.reader import read_header
from termllm.gguf.source import FileSource
from termllm.gguf.summary import ModelSummary, chat_template_family, summarize

SYSTEM = Message(Role.SYSTEM, "Be brief.")
HI = Message(Role.USER, "Hi")
HELLO = Message(Role.ASSISTANT, "Hello!")
BYE = Message(Role.USER, "Bye")

# Like Gemma's template: no system turn, and it says so by raising.
NO_SYSTEM = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Like Mistral's: roles must alternate, starting with the user.
ALTERNATING = (
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
    "{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}"
)


def vocabulary(*special: str) -> Vocabulary:
    return Vocabulary("<s>", "</s>", lambda text: text in special)


@pytest.fixture(scope="module")
def summary(starter_model: Path) -> ModelSummary:
    return summarize(read_header(FileSource(starter_model)))


def with_template(summary: ModelSummary, template: str | None) -> ModelSummary:
    family = None if template is None else "custom"
    return dataclasses.replace(summary, chat_template=template, chat_template_family=family)


def test_the_models_own_template_is_used(summary: ModelSummary) -> None:
    template, warning = select_template(None, summary, "smol.gguf", vocabulary())
    assert (template.label, warning) == ("gguf", None)
    assert template.render([SYSTEM, HI]) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    # The family's end-of-turn marker, then the EOS token's text.
    assert template.stops == ("<|im_end|>", "</s>")


def test_a_missing_template_falls_back_to_chatml_with_a_warning(summary: ModelSummary) -> None:
    template, warning = select_template(
        None, with_template(summary, None), "smol.gguf", vocabulary()
    )
    assert template.label == "chatml"
    assert warning == "smol.gguf has no chat template; using chatml"


@pytest.mark.parametrize(
    ("special", "expected"),
    [
        ("<|im_start|>", "chatml"),
        ("<|start_header_id|>", "llama3"),
        ("<start_of_turn>", "gemma"),
        ("<|end|>", "phi3"),
        ("[INST]", "mistral"),
        ("<|user|>", "zephyr"),
    ],
)
def test_the_fallback_follows_the_models_special_tokens(
    summary: ModelSummary, special: str, expected: str
) -> None:
    template, warning = select_template(
        None, with_template(summary, None), "m.gguf", vocabulary(special)
    )
    assert template.label == expected
    assert warning == f"m.gguf has no chat template; using {expected}"


def test_a_template_that_fails_to_compile_falls_back(summary: ModelSummary) -> None:
    broken = with_template(summary, "{{ messages | no_such_filter }}")
    template, warning = select_template(None, broken, "m.gguf", vocabulary())
    assert template.label == "chatml"
    assert warning == (
        "m.gguf's chat template failed to render "
        "(No filter named 'no_such_filter'. (line 1)); using chatml"
    )


def test_a_template_that_fails_to_render_falls_back_to_its_family(
    summary: ModelSummary,
) -> None:
    broken = dataclasses.replace(
        summary,
        chat_template="<start_of_turn>{{ raise_exception('not today') }}",
        chat_template_family="gemma",
    )
    template, warning = select_template(None, broken, "m.gguf", vocabulary())
    assert template.label == "gemma"
    assert warning == "m.gguf's chat template failed to render (not today); using gemma"


def test_a_template_that_rejects_system_prompts_gets_them_folded(summary: ModelSummary) -> None:
    template, warning = select_template(
        None, with_template(summary, NO_SYSTEM), "m.gguf", vocabulary()
    )
    assert (template.label, warning) == ("gguf", None)
    assert template.render([SYSTEM, HI, HELLO, BYE]) == (
        "<|im_start|>user\nBe brief.\n\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nBye<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_a_conversation_a_template_refuses_is_a_generation_error(summary: ModelSummary) -> None:
    template, warning = select_template(
        None, with_template(summary, ALTERNATING), "m.gguf", vocabulary()
    )
    assert warning is None
    assert template.render([SYSTEM, HI]) == "user: Be brief.\n\nHi\n"
    with pytest.raises(GenerationError, match=r"^the chat template failed to render: .*alternate"):
        template.render([HI, BYE])


def test_fold_system_joins_system_prompts_to_the_first_user_message() -> None:
    assert fold_system([SYSTEM, HI, HELLO]) == [Message(Role.USER, "Be brief.\n\nHi"), HELLO]
    assert fold_system([HI]) == [HI]
    assert fold_system([SYSTEM]) == [Message(Role.USER, "Be brief.")]


@pytest.mark.parametrize("name", list(BUILTIN_TEMPLATES))
def test_every_builtin_renders_a_whole_conversation(summary: ModelSummary, name: str) -> None:
    template, warning = select_template(name, summary, "m.gguf", vocabulary())
    assert (template.label, warning) == (name, None)
    prompt = template.render([SYSTEM, HI, HELLO, BYE])
    positions = [prompt.index(m.content) for m in (SYSTEM, HI, HELLO, BYE)]
    assert positions == sorted(positions)
    assert template.stops[-1] == "</s>"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "llama3",
            "<s><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
        ("llama2", "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]"),
        ("mistral", "<s>[INST] Be brief.\n\nHi [/INST]"),
        (
            "gemma",
            "<s><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n",
        ),
        ("phi3", "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n"),
        ("zephyr", "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n"),
    ],
)
def test_builtin_formats(summary: ModelSummary, name: str, expected: str) -> None:
    template, _ = select_template(name, summary, "m.gguf", vocabulary())
    assert template.render([SYSTEM, HI]) == expected


def test_an_override_file_is_used_as_is(summary: ModelSummary, tmp_path: Path) -> None:
    path = tmp_path / "plain.jinja"
    path.write_text(ALTERNATING)
    template, warning = select_template(str(path), summary, "m.gguf", vocabulary())
    assert (template.label, warning) == (str(path), None)
    assert template.render([HI]) == "user: Hi\n"


def test_an_override_that_is_neither_name_nor_file_is_a_load_error(
    summary: ModelSummary, tmp_path: Path
) -> None:
    with pytest.raises(ModelLoadError, match=r"neither a built-in \(chatml, llama3, .*\) nor a"):
        select_template(str(tmp_path / "missing.jinja"), summary, "m.gguf", vocabulary())


def test_an_override_file_with_bad_jinja_is_a_load_error(
    summary: ModelSummary, tmp_path: Path
) -> None:
    path = tmp_path / "bad.jinja"
    path.write_text("{% for message in messages %}\n{{ message['content'] }\n")
    with pytest.raises(ModelLoadError, match=r"^bad chat template .*bad\.jinja: .*\(line 2\)$"):
        select_template(str(path), summary, "m.gguf", vocabulary())


def test_an_override_file_that_cannot_render_is_a_load_error(
    summary: ModelSummary, tmp_path: Path
) -> None:
    path = tmp_path / "raises.jinja"
    path.write_text("{{ raise_exception('nope') }}")
    with pytest.raises(ModelLoadError, match=r"raises\.jinja: nope$"):
        select_template(str(path), summary, "m.gguf", vocabulary())


def test_chat_template_compiles_without_a_model() -> None:
    template = ChatTemplate(BUILTIN_TEMPLATES["chatml"].source, "chatml", (), vocabulary())
    assert template.render([HI]).endswith("<|im_start|>assistant\n")


# With the real model: the fallback and the overrides change what it is prompted with.

CAPITAL = Message(Role.USER, "What is the capital of France?")


def ask(request: LoadRequest, messages: list[Message]) -> tuple[Completion, LoadReport]:
    """The model's answer, which ends (`stop`) when the prompt is a chat turn it understands.

    Its answer is 7 tokens long whatever the evaluation schedule (measured on AVX2 with batches
    of 1, 8 and 512), far under the limit; what it says is its own business.
    """
    model = LlamaEngine().load(request)
    try:
        *_, end = model.stream_chat(
            messages, GenParams(temperature=0.0, max_tokens=64), threading.Event()
        )
    finally:
        model.close()
    assert isinstance(end, Completion)
    return end, model.report


def test_a_real_model_without_a_template_answers_in_chatml(
    starter_model: Path, tmp_path: Path
) -> None:
    # Renaming the key (same length) leaves a valid GGUF that has no chat template.
    path = tmp_path / "untemplated.gguf"
    shutil.copyfile(starter_model, path)
    with path.open("r+b") as handle:
        handle.seek(handle.read(4 * 1024 * 1024).index(b"tokenizer.chat_template"))
        handle.write(b"tokenizer.chat_templatX")
    end, report = ask(LoadRequest(path, n_ctx=512, threads=2), [CAPITAL])
    assert report.chat_template == "chatml"
    assert report.warnings == ("untemplated.gguf has no chat template; using chatml",)
    assert end.finish_reason is FinishReason.STOP
    assert end.content.strip()


def test_a_jinja_file_that_rejects_system_prompts_works_on_a_real_model(
    starter_model: Path, tmp_path: Path
) -> None:
    path = tmp_path / "no-system.jinja"
    path.write_text(NO_SYSTEM)
    request = LoadRequest(starter_model, n_ctx=512, threads=2, chat_template=str(path))
    end, report = ask(request, [SYSTEM, CAPITAL])
    assert (report.chat_template, report.warnings) == (str(path), ())
    assert end.finish_reason is FinishReason.STOP
    assert end.content.strip()


def test_a_bad_override_fails_the_load(starter_model: Path) -> None:
    request = LoadRequest(starter_model, n_ctx=512, threads=2, chat_template="no-such-format")
    with pytest.raises(ModelLoadError, match="'no-such-format' is neither a built-in"):
        LlamaEngine().load(request)


# Real templates, as the models ship them (tests/data/templates/): selected and rendered, and
# a few embedded in copies of the starter model, loaded from there.

GREETING = Message(Role.USER, "Hi there, Pat.")
REPLY = Message(Role.ASSISTANT, "Hello, Pat!")
EMBEDDED = (
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use",  # loops over `tools`
    "llama-cpp-microsoft-Phi-4-mini-instruct",  # tests `tools is defined`
    "meta-llama-Llama-3.2-3B-Instruct",
)


@pytest.fixture(scope="session")
def templated_models(
    starter_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("templated-models")
    return embed_templates(starter_model, (*EMBEDDED, BROKEN_TEMPLATE), directory)


def assert_in_its_format(template: ChatTemplate, real: RealTemplate) -> None:
    prompt = template.render([SYSTEM, GREETING, REPLY, CAPITAL])
    assert [marker for marker in real.markers if marker not in prompt] == []
    assert prompt.endswith(real.generation_prompt)
    # The turns keep their order; where the system prompt goes is the template's business.
    positions = [prompt.index(m.content) for m in (GREETING, REPLY, CAPITAL)]
    assert positions == sorted(positions)
    assert SYSTEM.content in prompt


def assert_answered(end: Completion) -> None:
    # What it says is another matter: prompted in a family it was not trained on, a 135M model
    # may well ramble.
    assert end.error is None
    assert end.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)


@pytest.mark.parametrize("real", REAL_TEMPLATES, ids=lambda real: real.name)
def test_a_real_template_is_used_as_the_model_ships_it(
    summary: ModelSummary, real: RealTemplate
) -> None:
    source = real.source
    own = dataclasses.replace(
        summary, chat_template=source, chat_template_family=chat_template_family(source)
    )
    assert own.chat_template_family == real.family
    template, warning = select_template(None, own, "m.gguf", vocabulary())
    assert (template.label, warning) == ("gguf", None)
    assert_in_its_format(template, real)
    builtin = BUILTIN_TEMPLATES.get(real.family)
    assert template.stops == (*(builtin.stops if builtin else ()), "</s>")


@pytest.mark.parametrize(
    "real", [real for real in REAL_TEMPLATES if real.name in EMBEDDED], ids=lambda real: real.name
)
def test_a_real_template_in_the_gguf_is_loaded_and_used(
    templated_models: dict[str, Path], real: RealTemplate
) -> None:
    path = templated_models[real.name]
    summary = summarize(read_header(FileSource(path)))
    assert summary.chat_template == real.source
    end, report = ask(LoadRequest(path, n_ctx=512, threads=2), [SYSTEM, CAPITAL])
    assert (report.chat_template, report.warnings) == ("gguf", ())
    assert_answered(end)
    template, _ = select_template(None, summary, path.name, vocabulary())
    assert_in_its_format(template, real)


def test_a_template_with_a_syntax_error_falls_back_when_the_model_loads(
    templated_models: dict[str, Path],
) -> None:
    end, report = ask(
        LoadRequest(templated_models[BROKEN_TEMPLATE], n_ctx=512, threads=2), [SYSTEM, CAPITAL]
    )
    assert report.chat_template == "chatml"
    assert report.warnings == (
        "broken-syntax.gguf's chat template failed to render (Expected an expression, "
        "got 'end of print statement' (line 4)); using chatml",
    )
    assert_answered(end)
    # llama-cpp-python's own compiling of the GGUF's templates is skipped only while loading.
    assert vars(llama_cpp.llama)["llama_chat_format"] is llama_cpp.llama_chat_format
