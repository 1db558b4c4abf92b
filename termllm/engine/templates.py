"""Chat templates: turning a conversation into the prompt text a model was trained on.

The model's own Jinja template (`tokenizer.chat_template`) comes first. Models without one, or
with one that fails to render, get a built-in format matching their special tokens, and a
warning. Everything is rendered in the sandbox llama-cpp-python's Jinja formatter uses, bounded
in time and size (template_bounds.py), so built-ins, files and the model's template behave alike.

Importing this module stays cheap (the CLI lists the built-in names in its help): Jinja and
llama_cpp are imported only when a template is compiled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from termllm.domain import Message, Role
from termllm.errors import GenerationError, ModelLoadError
from termllm.safe_text import one_line

if TYPE_CHECKING:
    from termllm.gguf.summary import ModelSummary

GGUF_TEMPLATE = "gguf"
"""The label of the model's own template."""
_REASON_CHARS = 200  # of a template's error, quoted in a warning or an error line


@dataclass(frozen=True)
class BuiltinTemplate:
    source: str
    """Jinja, with the variables HF chat templates get (messages, bos_token, eos_token…)."""
    stops: tuple[str, ...]
    """End-of-turn markers: generation stops when the model writes one."""
    marker: str | None
    """A special token only models trained on this format have in their vocabulary."""


# Templates that have no system turn put the system prompt in front of the first user message.
_SPLIT_SYSTEM = (
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{% set system = messages[0]['content'] %}{% set messages = messages[1:] %}"
    "{% else %}{% set system = '' %}{% endif %}"
)
_FOLDED = "((system + '\\n\\n') if loop.first and system else '') + message['content']"

BUILTIN_TEMPLATES: dict[str, BuiltinTemplate] = {
    "chatml": BuiltinTemplate(
        "{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        ("<|im_end|>",),
        "<|im_start|>",
    ),
    "llama3": BuiltinTemplate(
        "{{ bos_token }}{% for message in messages %}"
        "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
        " + message['content'] | trim + '<|eot_id|>' }}"
        "{% endfor %}{% if add_generation_prompt %}"
        "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
        ("<|eot_id|>",),
        "<|start_header_id|>",
    ),
    "llama2": BuiltinTemplate(
        _SPLIT_SYSTEM + "{% for message in messages %}{% if message['role'] == 'user' %}"
        "{{ bos_token + '[INST] ' }}{% if loop.first and system %}"
        "{{ '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}{% endif %}"
        "{{ message['content'] + ' [/INST]' }}"
        "{% else %}{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}{% endfor %}",
        (),
        None,
    ),
    "mistral": BuiltinTemplate(
        _SPLIT_SYSTEM + "{{ bos_token }}{% for message in messages %}"
        "{% if message['role'] == 'user' %}{{ '[INST] ' + " + _FOLDED + " + ' [/INST]' }}"
        "{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
        (),
        "[INST]",
    ),
    "gemma": BuiltinTemplate(
        _SPLIT_SYSTEM + "{{ bos_token }}{% for message in messages %}"
        "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
        "{{ '<start_of_turn>' + role + '\\n' + (" + _FOLDED + ") | trim + '<end_of_turn>\\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}",
        ("<end_of_turn>",),
        "<start_of_turn>",
    ),
    "phi3": BuiltinTemplate(
        "{% for message in messages %}"
        "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}",
        ("<|end|>",),
        "<|end|>",
    ),
    "zephyr": BuiltinTemplate(
        "{% for message in messages %}"
        "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}",
        (),
        "<|user|>",
    ),
}
_DEFAULT = "chatml"

# A short conversation every usable template must render: it catches templates that fail on
# any input (bad Jinja at run time, unsupported filters) when the model loads, not mid-chat.
_PROBE = (
    Message(Role.SYSTEM, "You are helpful."),
    Message(Role.USER, "Hi"),
    Message(Role.ASSISTANT, "Hello!"),
    Message(Role.USER, "Bye"),
)


# What llama-cpp-python's formatter gives templates beyond the conversation, for tool calls
# termllm does not make.
_TOOL_VARIABLES = ("tools", "tool_choice", "functions", "function_call")


@dataclass(frozen=True)
class Vocabulary:
    """What template selection needs from a loaded model's tokenizer."""

    bos_token: str
    eos_token: str
    is_special_token: Callable[[str], bool]
    """Whether this text is one token of the model's vocabulary (parsed as a special token)."""


class ChatTemplate:
    """A compiled template that renders messages into a prompt, generation prompt included."""

    def __init__(self, source: str, label: str, stops: Sequence[str], vocab: Vocabulary) -> None:
        from jinja2 import Undefined
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from termllm.engine.template_bounds import compile_template, raise_exception

        self.label = label
        """What `LoadReport.chat_template` shows: "gguf", a built-in name or a file path."""
        self.source = source
        self.stops = tuple(dict.fromkeys(s for s in (*stops, vocab.eos_token) if s))
        self._template = compile_template(source)
        # What llama-cpp-python's formatter gives every template besides the messages.
        self._given: dict[str, Any] = {
            "eos_token": vocab.eos_token,
            "bos_token": vocab.bos_token,
            "add_generation_prompt": True,
            "raise_exception": raise_exception,
            "strftime_now": Jinja2ChatFormatter.strftime_now,
        }
        # The formatter passes tools=None (and functions, tool_choice…) to every template, but
        # llama.cpp leaves out tools when there are none, and real templates count on it:
        # Hermes 3's loops over `tools`, Phi-4-mini's tests `tools is defined`. An Undefined
        # value reads exactly as a variable that was never passed.
        self._unset: dict[str, Any] = {name: Undefined(name=name) for name in _TOOL_VARIABLES}
        self._fold_system = False

    def render(
        self, messages: Sequence[Message], variables: Mapping[str, object] | None = None
    ) -> str:
        """The prompt text, with `variables` (such as `enable_thinking`) for the template to
        read; raises GenerationError when the template cannot render these."""
        from termllm.engine.template_bounds import TemplateBoundError

        extra = dict(variables or {})
        try:
            if self._fold_system:
                return self._render(fold_system(messages), extra)
            try:
                return self._render(messages, extra)
            except Exception as exc:
                # Many templates (Gemma's, Mistral's) refuse a system turn outright; the
                # prompt still matters, so it joins the first user message instead. One that
                # ran out of time or room would only do it again.
                folded = fold_system(messages)
                if folded == list(messages) or isinstance(exc, TemplateBoundError):
                    raise
                prompt = self._render(folded, extra)
                self._fold_system = True
                return prompt
        except Exception as exc:  # template code is data: any error can come out of it
            raise GenerationError(f"the chat template failed to render: {_one_line(exc)}") from exc

    def _render(self, messages: Sequence[Message], variables: dict[str, object]) -> str:
        from termllm.engine.template_bounds import render_bounded

        chat: Any = [_message_for_template(m) for m in messages]
        # The bounds grow with the conversation: a long one may make a long prompt.
        size = sum(len(text) for fields in chat for text in fields.values())
        given = {**self._given, "messages": chat, **self._unset, **variables}
        prompt = render_bounded(self._template, given, size)
        if not prompt.strip():
            # llama.cpp would fail on it with no reason given.
            raise ValueError("it renders an empty prompt")
        return prompt


def _message_for_template(message: Message) -> dict[str, str]:
    """A message as chat templates read it. An answer's reasoning goes where the templates that
    read it back look (`reasoning_content`: Qwen3, GLM; `thinking`: gpt-oss), never into its
    content: each template decides whether earlier reasoning reaches the prompt."""
    fields = {"role": message.role.value, "content": message.content}
    if message.reasoning:
        fields["reasoning_content"] = message.reasoning
        fields["thinking"] = message.reasoning
    return fields


def fold_system(messages: Sequence[Message]) -> list[Message]:
    """The messages with system prompts joined to the front of the first user message."""
    system = [m.content for m in messages if m.role is Role.SYSTEM]
    rest = [m for m in messages if m.role is not Role.SYSTEM]
    if not system:
        return rest
    for index, message in enumerate(rest):
        if message.role is Role.USER:
            joined = "\n\n".join([*system, message.content])
            rest[index] = replace(message, content=joined)
            return rest
    return [Message(Role.USER, "\n\n".join(system)), *rest]


def select_template(
    override: str | None, summary: ModelSummary, model_label: str, vocab: Vocabulary
) -> tuple[ChatTemplate, str | None]:
    """The template to use and, when falling back from the model's own, a one-line warning.

    `override` is a built-in name or a path to a Jinja file; either must work or loading
    fails with ModelLoadError, since the user asked for exactly that template.
    """
    if override is not None:
        return _override(override, vocab), None
    if summary.chat_template is None or not summary.chat_template.strip():
        name = _fallback_name(summary, vocab)
        has = "no" if summary.chat_template is None else "an empty"
        return _builtin(name, vocab), f"{model_label} has {has} chat template; using {name}"
    family = summary.chat_template_family
    stops = BUILTIN_TEMPLATES[family].stops if family in BUILTIN_TEMPLATES else ()
    try:
        template = ChatTemplate(summary.chat_template, GGUF_TEMPLATE, stops, vocab)
        template.render(_PROBE)
    except Exception as exc:
        name = _fallback_name(summary, vocab)
        reason = _one_line(exc)
        warning = f"{model_label}'s chat template failed to render ({reason}); using {name}"
        return _builtin(name, vocab), warning
    return template, None


def _override(override: str, vocab: Vocabulary) -> ChatTemplate:
    if override in BUILTIN_TEMPLATES:
        return _builtin(override, vocab)
    try:
        path = Path(override).expanduser()
    except RuntimeError:  # `~name/…` for a user this system does not know: no such file
        path = Path(override)
    if not path.is_file():
        names = ", ".join(BUILTIN_TEMPLATES)
        raise ModelLoadError(
            f"chat template {override!r} is neither a built-in ({names}) nor a file"
        )
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"cannot read the chat template {path}: {_one_line(exc)}") from exc
    try:
        template = ChatTemplate(source, str(path), (), vocab)
        template.render(_PROBE)
    except Exception as exc:
        raise ModelLoadError(f"bad chat template {path}: {_one_line(exc)}") from exc
    return template


def _builtin(name: str, vocab: Vocabulary) -> ChatTemplate:
    builtin = BUILTIN_TEMPLATES[name]
    return ChatTemplate(builtin.source, name, builtin.stops, vocab)


def _fallback_name(summary: ModelSummary, vocab: Vocabulary) -> str:
    """The built-in closest to what the model was trained on.

    The family of a broken template says it best; else the special tokens in the vocabulary
    do, since every one of these formats but llama2 brings its own.
    """
    family = summary.chat_template_family
    if family is not None and family in BUILTIN_TEMPLATES:
        return family
    for name, builtin in BUILTIN_TEMPLATES.items():
        if builtin.marker is not None and vocab.is_special_token(builtin.marker):
            return name
    return _DEFAULT


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, GenerationError) and exc.__cause__ is not None:
        exc = exc.__cause__  # a render error: its cause is the news
    # Jinja's syntax errors carry the line in the template that is at fault.
    lineno = getattr(exc, "lineno", None)
    where = f" (line {lineno})" if isinstance(lineno, int) else ""
    # A template's own message (raise_exception) can be megabytes: a line quotes its start.
    text = one_line(str(exc)[: 4 * _REASON_CHARS], _REASON_CHARS) or type(exc).__name__
    return text + where
