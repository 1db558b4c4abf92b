"""Rendering chat templates within bounds of time and memory.

A model file's chat template is code from a stranger. Jinja's immutable sandbox (which
llama-cpp-python renders in) keeps it away from Python's internals, but not from looping for
hours (`{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}`) or
building gigabytes (`{{ 'x' * 10**10 }}`). Templates here are compiled in that same sandbox, set
up like llama-cpp-python's Jinja2ChatFormatter (its extensions and `tojson`), with bounds:

- time: every loop step, call, filter, operator and piece of output checks a deadline in the
  thread's CPU time, so a suspended or busy machine does not make a template fail;
- size: no value it builds, and not its output, may pass a limit that grows with the
  conversation; operations that multiply their input (`*`, `**`, `%`, `str.format`, widths and
  counts given to `center`, `replace`, `join`, `indent`…) are refused before they allocate;
- work: all it builds along the way counts against a budget, so a loop that makes and drops
  big values stops too.

The checks hook in where the sandbox allows (intercepted operators, `call`, `str.format`) and, for
loops, output, `~` and literals, as filters wrapped around those nodes of the parsed template.
A template past a bound raises TemplateBoundError saying which.
"""

from __future__ import annotations

import re
import string
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

from jinja2 import BaseLoader, Template, nodes, pass_context
from jinja2.ext import loopcontrols
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

RENDER_CPU_SECONDS = 1.0
"""The most CPU time one rendering may take; real templates take a few milliseconds."""
MAX_SOURCE_CHARS = 256 * 1024
"""The longest template compiled; real ones are under 30,000 characters."""
# The output, and any single value, may be 1 Mi characters plus 8 per character of the
# conversation; all the values built in one rendering, 64 Mi plus 64 per character.
OUTPUT_BASE_CHARS = 1 << 20
OUTPUT_PER_INPUT_CHAR = 8
WORK_BASE_CHARS = 64 << 20
WORK_PER_INPUT_CHAR = 64
MAX_INT_BITS = 1 << 16
"""Integers stay under 65,536 bits (about 20,000 digits): big ones are slow to multiply."""
_MAX_DEPTH = 32  # nesting of lists and dicts; templates nest two or three deep
_CHECK_EVERY = 64  # steps between two looks at the clock, which costs a system call

_T = TypeVar("_T")


class TemplateBoundError(Exception):
    """A template went past a bound of time or size; the message says which."""


class _Budget:
    """What one rendering may still spend. Its methods run for every step of every template,
    so they are kept to a few operations each."""

    def __init__(self, input_chars: int) -> None:
        self.deadline = time.thread_time() + RENDER_CPU_SECONDS
        self.value_limit = OUTPUT_BASE_CHARS + OUTPUT_PER_INPUT_CHAR * input_chars
        self.output_left = self.value_limit
        self.work_limit = WORK_BASE_CHARS + WORK_PER_INPUT_CHAR * input_chars
        self.work_left = self.work_limit
        self.countdown = _CHECK_EVERY

    def check_clock(self) -> None:
        self.countdown = _CHECK_EVERY
        if time.thread_time() > self.deadline:
            raise TemplateBoundError(f"it ran for over {RENDER_CPU_SECONDS:g} s")

    def allow(self, size: int) -> None:
        """Refuse to build a value of about `size` characters when it is over the limit."""
        if size > self.value_limit:
            raise TemplateBoundError(
                f"it builds a value of {size:,} characters (the limit is {self.value_limit:,})"
            )

    def charge(self, value: _T) -> _T:
        """Count a value just built against the budget, as a step; it passes through."""
        size = len(value) if isinstance(value, str) else _size(value)
        self.work_left -= size
        if size > self.value_limit or self.work_left < 0:
            self.allow(size)
            raise TemplateBoundError(
                f"it builds over {self.work_limit:,} characters of values in all"
            )
        self.countdown -= 1
        if not self.countdown:
            self.check_clock()
        return value

    def emit(self, value: _T) -> _T:
        """Count a piece of output, before Jinja turns it into text."""
        self.output_left -= len(value) if isinstance(value, str) else _size(value)
        if self.output_left < 0:
            raise TemplateBoundError(f"its output passes {self.value_limit:,} characters")
        return self.charge(value)


_active: ContextVar[_Budget] = ContextVar("template_budget")


def compile_template(source: str) -> Template:
    """`source` compiled in the bounded sandbox; raises TemplateBoundError for one too long,
    and Jinja's errors for one that does not parse."""
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateBoundError(
            f"it is {len(source):,} characters long (the limit is {MAX_SOURCE_CHARS:,})"
        )
    environment = _BoundedEnvironment(
        loader=BaseLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[Jinja2ChatFormatter.IgnoreGenerationTags, loopcontrols],
    )
    # lipsum(n) writes n paragraphs in a loop nothing can interrupt; no chat template uses it.
    del environment.globals["lipsum"]
    filters = {**environment.filters, "tojson": Jinja2ChatFormatter.tojson}
    environment.filters = {name: _bounded_filter(name, f) for name, f in filters.items()}
    environment.filters.update(_GUARD_FILTERS)
    tree = _Guard().visit(environment.parse(source))
    tree.set_environment(environment)
    return environment.from_string(tree)


def render_bounded(template: Template, variables: Mapping[str, Any], input_chars: int) -> str:
    """The template rendered with `variables`, within the bounds for a conversation of
    `input_chars` characters; raises TemplateBoundError past one."""
    token = _active.set(_Budget(input_chars))
    try:
        return template.render(variables)
    finally:
        _active.reset(token)


def raise_exception(message: str) -> None:
    """What templates call to refuse a conversation (as in llama-cpp-python and Transformers)."""
    raise ValueError(message)


def _size(value: object, depth: int = 0) -> int:
    """About how many characters `value` is as text (str() of a list writes its items)."""
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if isinstance(value, Namespace):
        # What its repr writes out; a namespace has no public way to list what it holds.
        value = object.__getattribute__(value, "_Namespace__attrs")
    if isinstance(value, dict):
        _check_depth(depth)
        return sum(_size(k, depth + 1) + _size(v, depth + 1) + 4 for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        _check_depth(depth)
        return sum(_size(item, depth + 1) + 2 for item in value) + 2
    return 16


def _check_depth(depth: int) -> None:
    if depth == _MAX_DEPTH:
        raise TemplateBoundError(f"it nests values over {_MAX_DEPTH} deep")


def _number(value: object) -> int:
    """A width or count given to an operation, as far as it can make it grow."""
    if isinstance(value, int):
        return abs(value)
    return len(value) if isinstance(value, str) else 0


# A `%` conversion: its mapping key, flags, width, precision, length modifier and type.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)
_DIGITS = re.compile(r"\d+")


def _spec_number(text: str, star: int) -> int:
    """A width or precision as written in a specification; `*` takes one from the arguments."""
    if text == "*":
        return star
    # Python refuses to convert ints of over 4,300 digits; no real width comes near 20.
    return int(text) if 0 < len(text) < 20 else (1 << 64 if text else 0)


def _check_percent(budget: _Budget, fmt: str | bytes, right: Any) -> None:
    """Refuse `fmt % right` when its result could pass the limit: each conversion can be as
    long as the longest argument, padded to its width or precision."""
    text = fmt if isinstance(fmt, str) else fmt.decode("latin-1")
    args = list(right.values() if isinstance(right, Mapping) else _as_tuple(right))
    longest = max((_size(value) for value in args), default=0)
    star = max((abs(value) for value in args if isinstance(value, int)), default=0)
    total = len(text)
    for width, precision, kind in _PERCENT_SPEC.findall(text):
        if kind != "%":
            total += longest + max(_spec_number(width, star), _spec_number(precision, star))
    budget.allow(total)


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return value if isinstance(value, tuple) else (value,)


def _check_format(budget: _Budget, fmt: str, args: list[Any]) -> None:
    """Refuse `fmt.format(*args)` when its result could pass the limit: each field can be as
    long as the longest argument, padded to the widest number in its specification (or to an
    argument, for a nested field: `{:{}}`)."""
    longest = max((_size(value) for value in args), default=0)
    star = max((abs(value) for value in args if isinstance(value, int)), default=0)
    total = len(fmt)
    for _, field, spec, _ in string.Formatter().parse(fmt):
        if field is not None:
            pad = max((_spec_number(run, 0) for run in _DIGITS.findall(spec or "")), default=0)
            total += longest + (max(pad, star) if "{" in (spec or "") else pad)
    budget.allow(total)


_SEQUENCES = (str, bytes, list, tuple)


def _check_binop(budget: _Budget, operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        if isinstance(left, _SEQUENCES) and isinstance(right, int):
            budget.allow(_size(left) * right)
        elif isinstance(right, _SEQUENCES) and isinstance(left, int):
            budget.allow(_size(right) * left)
        elif isinstance(left, int) and isinstance(right, int):
            _check_int_bits(left.bit_length() + right.bit_length())
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if right > 0 and abs(left) > 1:
            _check_int_bits(left.bit_length() * right)
    elif operator == "%" and isinstance(left, str | bytes):
        _check_percent(budget, left, right)


def _check_int_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise TemplateBoundError(f"it builds an integer of about {bits:,} bits")


def _check_method(
    budget: _Budget, method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[Any, ...]:
    """Refuse a call of a built-in method (of a str, an int…) that would build too much;
    returns the arguments, with an iterator to `join` turned into the list it will read."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, int):
            # Widths and lengths: "x".center(n), (1).to_bytes(n, "big")
            budget.allow(abs(value))
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | bytes):
        return args
    name, size = method.__name__, len(owner)
    if name == "join" and args:
        items = list(args[0])
        budget.allow(sum(_size(item) for item in items) + size * len(items))
        return (items, *args[1:])
    if name == "expandtabs":
        tab = args[0] if args and isinstance(args[0], int) else 8
        tabs = owner.count(b"\t") if isinstance(owner, bytes) else owner.count("\t")
        budget.allow(size + tabs * tab)
    elif name == "replace" and len(args) >= 2:
        _check_replace(budget, owner, *args)
    elif name == "translate" and isinstance(owner, str) and args and isinstance(args[0], Mapping):
        longest = max((_size(v) for v in args[0].values()), default=1)
        budget.allow(size * longest)
    return args


def _check_replace(budget: _Budget, text: Any, old: Any, new: Any, count: Any = -1) -> None:
    same_kind = isinstance(old, str) if isinstance(text, str) else isinstance(old, bytes)
    if not isinstance(text, str | bytes) or not same_kind:
        return
    times: int = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    budget.allow(len(text) + times * max(0, _size(new) - len(old)))


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every operator that can grow a value, every call and every
    `str.format` checked against the budget of the rendering under way."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = _active.get()
        if operator != "+":  # the commonest, and its result is no longer than its operands
            _check_binop(budget, operator, left, right)
        return budget.charge(super().call_binop(context, operator, left, right))

    def call(
        __self,  # the sandbox's spelling: a keyword argument may be called "self"
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        budget = _active.get()
        if isinstance(__obj, types.BuiltinMethodType):
            args = _check_method(budget, __obj, args, kwargs)
        return budget.charge(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        sandboxed = super().wrap_str_format(value)
        if sandboxed is None:
            return None
        fmt: str = value.__self__

        def bounded(*args: Any, **kwargs: Any) -> str:
            budget = _active.get()
            arguments = [*args, *kwargs.values()]
            if value.__name__ == "format_map" and len(args) == 1 and isinstance(args[0], Mapping):
                arguments = list(args[0].values())
            _check_format(budget, fmt, arguments)
            return sandboxed(*args, **kwargs)

        return bounded


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` as a filter that steps the budget, runs the check that `name` has if it can
    multiply its input, and charges its result.

    The wrapper takes the context, which also keeps Jinja from running the filter on constants
    while compiling, outside any budget; it hands the original what that one asked for.
    """
    check = _FILTER_CHECKS.get(name)
    passed = getattr(getattr(function, "jinja_pass_arg", None), "name", None)

    @pass_context
    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _active.get()
        if check is not None:
            value = check(budget, value, *args, **kwargs)
        if passed == "context":
            result = function(context, value, *args, **kwargs)
        elif passed == "eval_context":
            result = function(context.eval_ctx, value, *args, **kwargs)
        elif passed == "environment":
            result = function(context.environment, value, *args, **kwargs)
        else:
            result = function(value, *args, **kwargs)
        return budget.charge(result)

    return bounded


# Checks for the filters that can build more than a few times their input, with the filters'
# own parameters; each returns the value to filter (join and sum read theirs only once).


def _center(budget: _Budget, value: Any, width: Any = 80) -> Any:
    budget.allow(max(_size(value), _number(width)))
    return value


def _indent(budget: _Budget, value: Any, width: Any = 4, *_: Any, **__: Any) -> Any:
    lines = value.count("\n") + 1 if isinstance(value, str) else _size(value)
    budget.allow(_size(value) + lines * _number(width))
    return value


def _wordwrap(
    budget: _Budget,
    value: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    *_: Any,
    **__: Any,
) -> Any:
    lines = _size(value) // max(1, _number(width)) + 1
    if isinstance(value, str):
        lines += value.count("\n")
    budget.allow(_size(value) + lines * max(1, _number(wrapstring)))
    return value


def _format(budget: _Budget, value: Any, *args: Any, **kwargs: Any) -> Any:
    # The filter is `value % (kwargs or args)`.
    if isinstance(value, str):
        _check_percent(budget, value, kwargs or args)
    return value


def _replace(budget: _Budget, value: Any, old: Any, new: Any, count: Any = None) -> Any:
    # The filter replaces text: str() of each (an undefined `old` is "", found everywhere).
    _check_replace(budget, str(value), str(old), new, -1 if count is None else count)
    return value


def _join(budget: _Budget, value: Any, d: Any = "", *_: Any, **__: Any) -> Any:
    items = list(value)
    budget.allow(sum(_size(item) for item in items) + _size(d) * len(items))
    return items


def _slice(budget: _Budget, value: Any, slices: Any, *_: Any, **__: Any) -> Any:
    budget.allow(2 * _number(slices))
    return value


def _batch(budget: _Budget, value: Any, linecount: Any, fill_with: Any = None) -> Any:
    if fill_with is not None:
        budget.allow(_number(linecount) * (_size(fill_with) + 2))
    return value


def _sum(budget: _Budget, value: Any, attribute: Any = None, start: Any = 0) -> Any:
    items = list(value)
    if not isinstance(start, int | float):
        # Adding up lists or strings copies the total so far at every item.
        budget.allow(len(items) * (sum(_size(item) for item in items) + _size(start)))
    return items


def _tojson(
    budget: _Budget,
    value: Any,
    ensure_ascii: Any = False,
    indent: Any = None,
    separators: Any = None,
    *_: Any,
    **__: Any,
) -> Any:
    spacing = _number(indent) + sum(_number(s) for s in separators or ())
    # An escape can take 6 characters per character; each item a separator and a line
    # indented once per level it is nested in.
    budget.allow(_size(value) * 6 + 2 * _items(value) * _MAX_DEPTH * spacing)
    return value


def _items(value: object, depth: int = 0) -> int:
    """How many values `value` holds, itself included."""
    if isinstance(value, dict):
        _check_depth(depth)
        return 1 + sum(_items(k, depth + 1) + _items(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        _check_depth(depth)
        return 1 + sum(_items(item, depth + 1) for item in value)
    return 1


def _urlize(budget: _Budget, value: Any, *args: Any, **kwargs: Any) -> Any:
    added = sum(_number(v) for v in (*args, *kwargs.values()) if isinstance(v, str))
    budget.allow(_size(value) * (2 + added))
    return value


_FILTER_CHECKS: dict[str, Callable[..., Any]] = {
    "batch": _batch,
    "center": _center,
    "format": _format,
    "indent": _indent,
    "join": _join,
    "replace": _replace,
    "slice": _slice,
    "sum": _sum,
    "tojson": _tojson,
    "urlize": _urlize,
    "wordwrap": _wordwrap,
}


# The filters that the parsed template is rewritten to go through.
_ITERATE = "termllm.iterate"
_OUTPUT = "termllm.output"
_LITERAL = "termllm.literal"
_CONCAT = "termllm.concat"


class _Steps:
    """An iterable a `for` loop walks, stepping the budget at each item. It has the length of
    what it wraps, when that has one, so `loop.length` costs no extra pass."""

    def __init__(self, iterable: Iterable[Any], budget: _Budget) -> None:
        self._iterable = iterable
        self._budget = budget

    def __len__(self) -> int:
        return len(self._iterable)  # type: ignore[arg-type]  # TypeError here is Jinja's cue

    def __iter__(self) -> Iterator[Any]:
        budget = self._budget
        for item in self._iterable:
            budget.countdown -= 1
            if not budget.countdown:
                budget.check_clock()
            yield item


@pass_context
def _iterate(_: Context, iterable: Iterable[Any]) -> _Steps:
    return _Steps(iterable, _active.get())


@pass_context
def _output(_: Context, value: Any) -> Any:
    return _active.get().emit(value)


@pass_context
def _literal(_: Context, value: Any) -> Any:
    return _active.get().charge(value)


@pass_context
def _concat(context: Context, items: list[Any]) -> str:
    budget = _active.get()
    budget.allow(sum(_size(item) for item in items))
    # What Jinja's own code for `~` calls.
    joined = markup_join(items) if context.eval_ctx.autoescape else str_join(items)
    return budget.charge(joined)


_GUARD_FILTERS: dict[str, Callable[..., Any]] = {
    _ITERATE: _iterate,
    _OUTPUT: _output,
    _LITERAL: _literal,
    _CONCAT: _concat,
}


class _Guard(NodeTransformer):
    """Routes what the sandbox has no hook for through the guard filters: each `for` loop's
    iterable, each piece of output (text included: a loop repeats it), each literal list, tuple
    and dict, and each `~` (whose operands it sizes before they are turned into text)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _through(_ITERATE, node.iter)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_through(_OUTPUT, child) for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _through(_CONCAT, nodes.List(node.nodes, lineno=node.lineno))

    def visit_List(self, node: nodes.List) -> nodes.Node:
        self.generic_visit(node)
        return _through(_LITERAL, node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        return _through(_LITERAL, node)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        # Only tuples that are values: `{% for a, b in … %}` assigns to one.
        return _through(_LITERAL, node) if node.ctx == "load" else node


def _through(name: str, node: nodes.Node) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)
