"""The think setting, as the variables a model's chat template reads to turn its reasoning on,
off or up: `enable_thinking` (Qwen3, GLM-4.5, DeepSeek-R1 copies that add it), `thinking`
(DeepSeek-V3.1, Granite 3.3) and `reasoning_effort` (gpt-oss).

A template that reads none of them cannot be steered; what the user asked for and what the
model can do are reconciled here once, for the engine to render and the turn to say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from termllm.domain import Think

_SWITCHES = ("enable_thinking", "thinking")
_EFFORT = "reasoning_effort"
_LEVELS = (Think.LOW, Think.MEDIUM, Think.HIGH)


@dataclass(frozen=True)
class ThinkControls:
    """The variables a template reads that steer its reasoning."""

    switch: str | None = None
    """A true/false variable that turns thinking on or off."""
    effort: bool = False
    """Whether it reads `reasoning_effort` (low, medium, high)."""

    @property
    def steerable(self) -> bool:
        return self.switch is not None or self.effort


def template_controls(source: str) -> ThinkControls:
    """What `source` reads; a variable only counts where the template uses it as one (not in
    text it writes)."""
    used = set(re.findall(r"(?<![\w.])([a-z_]+)\b", _code_of(source)))
    switch = next((name for name in _SWITCHES if name in used), None)
    return ThinkControls(switch=switch, effort=_EFFORT in used)


def _code_of(source: str) -> str:
    """The template's statements and expressions, without the text between them or the
    strings in them."""
    code = " ".join(re.findall(r"\{[{%](.*?)[}%]\}", source, flags=re.DOTALL))
    return re.sub(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'", " ", code)


def think_variables(controls: ThinkControls, think: Think) -> tuple[dict[str, object], str | None]:
    """The template variables for `think`, and a note when the model cannot do what it asks
    (None: it can, or nothing was asked)."""
    if think is Think.AUTO:
        return {}, None
    if not controls.steerable:
        return {}, f"this model's thinking cannot be changed (think {think.value} is ignored)"
    variables: dict[str, object] = {}
    note = None
    if controls.effort:
        if think in _LEVELS:
            variables[_EFFORT] = think.value
        elif think is Think.OFF and controls.switch is None:
            variables[_EFFORT] = Think.LOW.value
            note = "this model cannot turn its thinking off: thinking at low effort"
    if controls.switch is not None:
        variables[controls.switch] = think is not Think.OFF
        if think in _LEVELS and not controls.effort:
            note = f"this model's thinking has no levels: thinking on (for think {think.value})"
    return variables, note
