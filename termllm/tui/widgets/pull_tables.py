"""The pull screen's table: the Hub's search results, or a repo's files against this machine
with the columns and verdicts of `termllm info owner/repo`, the recommended file marked,
coloured and highlighted at first.

Columns are cut to the width there is: the first one (a repo or a file name, the only long
one) takes what the others leave, and ends in "…" when that is not enough."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.cells import cell_len, set_cell_size
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from termllm.domain import HubRef
from termllm.safe_text import one_line
from termllm.services.repo_fit import machine_summary
from termllm.units import format_bytes, format_count

if TYPE_CHECKING:
    from termllm.hub.search import HubModelResult
    from termllm.services.repo_fit import FileFit, RepoFit

RECOMMENDED = "★ "
NOT_RECOMMENDED = "  "
_RESULT_COLUMNS = (("PARAMS", 7), ("DOWNLOADS", 11), ("LIKES", 7), ("GATED", 7))
_FILE_COLUMNS = (("QUANT", 9), ("SIZE", 10), ("MEMORY", 11))
_GAP = 2
_RUNS_HEAD = "RUNS HERE"
_MIN_FIRST = 12
# Hub file names are at most a few path parts; longer is cut, as `info` cuts them.
_MAX_NAME_CHARS = 100
# The options' padding and a scrollbar's room, off the width the table is given.
_CHROME = 4


class PullTable(Vertical):
    """Column heads, one option per row (a repo id, or the reference that pulls the file) and,
    under a repo's files, what they were judged against. Hidden until it has rows."""

    DEFAULT_CSS = """
    PullTable {
        display: none;
        height: auto;
    }
    PullTable.-shown {
        display: block;
    }
    PullTable #pull-head {
        color: $text-muted;
        text-style: bold;
        padding: 0 1;
    }
    PullTable #pull-list {
        height: auto;
        max-height: 12;
        border: none;
    }
    PullTable #pull-note {
        display: none;
        margin: 1 0 0 0;
        color: $text-muted;
    }
    PullTable.-files #pull-note {
        display: block;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.results: tuple[HubModelResult, ...] | None = None
        self.plan: RepoFit | None = None
        self._ref: HubRef | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="pull-head")
        yield OptionList(id="pull-list")
        # Not markup: the note quotes Hub names.
        yield Static(id="pull-note", markup=False)

    def show_results(self, results: tuple[HubModelResult, ...]) -> None:
        self.results, self.plan, self._ref = results, None, None
        self._fill(0)

    def show_files(self, ref: HubRef, plan: RepoFit) -> None:
        """`ref` names the repo (and revision) the files' pull references use."""
        self.results, self.plan, self._ref = None, plan, ref
        recommended = plan.recommended
        self._fill(plan.files.index(recommended) if recommended is not None else 0)

    def chosen(self) -> str | None:
        """The highlighted row's repo id or pull reference."""
        options = self.query_one(OptionList)
        if options.highlighted is None or not self.has_class("-shown"):
            return None
        option = options.get_option_at_index(options.highlighted)
        return None if option.disabled else option.id

    def move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if step > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    def on_resize(self) -> None:
        self._fill(None)

    def _fill(self, highlighted: int | None) -> None:
        """(Re)draw the rows for the width there is, keeping the highlight unless given one."""
        options = self.query_one(OptionList)
        keep = options.highlighted if highlighted is None else highlighted
        parent = self.parent
        room = parent.content_region.width if isinstance(parent, Widget) else self.size.width
        width = max(40, room - _CHROME)
        if self.plan is not None and self._ref is not None:
            head, rows = file_table(self.plan, pull_ref_for(self._ref), width)
            self.query_one("#pull-note", Static).update(plan_note(self.plan))
        elif self.results is not None:
            head, rows = result_table(self.results, width)
        else:
            return
        self.query_one("#pull-head", Static).update(head)
        options.clear_options()
        options.add_options(rows)
        if rows and keep is not None:
            options.highlighted = min(keep, len(rows) - 1)
        self.set_class(bool(rows), "-shown")
        self.set_class(self.plan is not None, "-files")


def pull_ref_for(ref: HubRef) -> Callable[[FileFit], str]:
    """The reference that pulls exactly one file of `ref`'s repo (with a split model's other
    parts), at the revision the files were listed from."""
    revision = f"@{ref.revision}" if ref.revision else ""
    return lambda entry: f"{ref.repo_id}{revision}/{entry.paths[0]}"


def result_table(results: Sequence[HubModelResult], width: int) -> tuple[Content, list[Option]]:
    """The column heads and one option per repo (its id is the repo id)."""
    rest = sum(column_width for _, column_width in _RESULT_COLUMNS)
    longest = max((cell_len(result.repo_id) for result in results), default=_MIN_FIRST)
    first = max(_MIN_FIRST, min(longest, width - rest))
    head = _cell("REPO", first) + "".join(
        _cell(name, column_width, right=True) for name, column_width in _RESULT_COLUMNS
    )
    options = []
    seen: set[str] = set()
    for result in results:
        # A row's id must be unique: a repo the Hub names twice is shown once.
        if result.repo_id in seen:
            continue
        seen.add(result.repo_id)
        # Every string of a result was made one safe line when the answer was parsed.
        values = (
            format_count(result.parameter_count),
            f"{result.downloads:,}",
            f"{result.likes:,}",
            "yes" if result.gated else "no",
        )
        line = _cell(result.repo_id, first) + "".join(
            _cell(value, column_width, right=True)
            for value, (_, column_width) in zip(values, _RESULT_COLUMNS, strict=True)
        )
        options.append(Option(Content(line), id=result.repo_id))
    return Content(head), options


def file_table(
    plan: RepoFit, pull_ref: Callable[[FileFit], str], width: int
) -> tuple[Content, list[Option]]:
    """The column heads and one option per model file (its id is `pull_ref` of it)."""
    names = [_file_name(entry) for entry in plan.files]
    verdicts = [entry.verdict for entry in plan.files]
    rest = (
        len(RECOMMENDED)
        + sum(column_width for _, column_width in _FILE_COLUMNS)
        + _GAP
        + max(len(verdict) for verdict in [*verdicts, _RUNS_HEAD])
    )
    longest = max((cell_len(name) for name in names), default=_MIN_FIRST)
    first = max(_MIN_FIRST, min(longest, width - rest))
    head = (
        NOT_RECOMMENDED
        + _cell("FILE", first)
        + "".join(_cell(name, column_width, right=True) for name, column_width in _FILE_COLUMNS)
        + " " * _GAP
        + _RUNS_HEAD
    )
    options = []
    for entry, name, verdict in zip(plan.files, names, verdicts, strict=True):
        values = (
            one_line(entry.quant or "?", max_chars=40),
            format_bytes(entry.size_bytes),
            "~" + format_bytes(entry.fit.memory.total_bytes),
        )
        recommended = entry is plan.recommended
        line = (
            (RECOMMENDED if recommended else NOT_RECOMMENDED)
            # The end of a name (quant, part number) tells a repo's files apart: cut its middle.
            + _cell(name, first, middle=True)
            + "".join(
                _cell(value, column_width, right=True)
                for value, (_, column_width) in zip(values, _FILE_COLUMNS, strict=True)
            )
            + " " * _GAP
            + verdict
        )
        prompt = Content.styled(line, "bold $text-success") if recommended else Content(line)
        options.append(Option(prompt, id=pull_ref(entry)))
    return Content(head), options


def plan_note(plan: RepoFit) -> str:
    """What the verdicts were judged against, and why the recommendation."""
    here = f"At {plan.context_size} ctx; this machine: {machine_text(plan)}."
    if plan.recommended is None:
        return f"{here}\nRecommended: none: {plan.reason}."
    best = one_line(plan.recommended.label, max_chars=_MAX_NAME_CHARS)
    return f"{here}\n{RECOMMENDED}{best} is recommended: {plan.reason}."


def machine_text(plan: RepoFit) -> str:
    """The memory and disk the plan counted on, as `info` words them."""
    return machine_summary(plan.machine, plan.disk_free_bytes)


def _file_name(entry: FileFit) -> str:
    # File names come from the Hub: one safe line each.
    name = one_line(entry.paths[0], max_chars=_MAX_NAME_CHARS)
    return name + (f" (+{len(entry.paths) - 1} parts)" if len(entry.paths) > 1 else "")


def _cell(text: str, width: int, *, right: bool = False, middle: bool = False) -> str:
    """`text` in `width` cells, cut at the end (or in the middle) with "…" when it is wider."""
    if cell_len(text) > width:
        if not middle:
            return set_cell_size(text, width - 1) + "…"
        head = (width - 1) // 4
        tail = _last_cells(text, width - 1 - head)
        return set_cell_size(text, head) + "…" + set_cell_size(tail, width - 1 - head)
    padding = " " * (width - cell_len(text))
    return padding + text if right else text + padding


def _last_cells(text: str, width: int) -> str:
    """The end of `text` that fits in `width` cells."""
    taken = 0
    for start in range(len(text) - 1, -1, -1):
        taken += cell_len(text[start])
        if taken > width:
            return text[start + 1 :]
    return text
