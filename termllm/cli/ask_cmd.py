"""`termllm ask`: one prompt in, the answer streamed out; piped stdin goes before the question."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

import typer

from termllm.cli.answer_plain import AnswerWriter, PlainWriter
from termllm.cli.context import services
from termllm.cli.options import (
    FLASH_ATTN_HELP,
    KV_TYPE_HELP,
    check_cid,
    check_flag,
    check_memory_flags,
    memory_flags,
)
from termllm.cli.output import note, print_json, stdout_console
from termllm.domain import Completion, FinishReason
from termllm.errors import ExitCode, UsageError
from termllm.safe_text import argument_text
from termllm.setting_fields import CONTEXT_KEY, FIELDS_BY_NAME, THREADS

if TYPE_CHECKING:
    from termllm.engine.base import LoadReport


def ask(
    ctx: typer.Context,
    prompt: list[str] = typer.Argument(None, help="The question; piped stdin goes before it."),
    model: str = typer.Option(None, "-m", "--model", help="Model reference (see `termllm ls`)."),
    system: str = typer.Option(None, "-s", "--system", help="System prompt."),
    # Ranges are checked by check_flag, against the settings' own fields.
    temperature: float = typer.Option(None, "--temperature", help="0 or more; 0 is greedy."),
    top_p: float = typer.Option(None, "--top-p", help="0 to 1."),
    top_k: int = typer.Option(None, "--top-k", help="0 or more; 0 is off."),
    min_p: float = typer.Option(None, "--min-p", help="0 to 1."),
    repeat_penalty: float = typer.Option(None, "--repeat-penalty", help="0 or more; 1 is off."),
    seed: int = typer.Option(
        None, "--seed", help="Seed for reproducible sampling (0 to 4294967294)."
    ),
    max_tokens: int = typer.Option(None, "--max-tokens", help="Longest answer (1 or more)."),
    think: str = typer.Option(
        None, "--think", help="Thinking models: auto, on, off, low, medium or high."
    ),
    think_budget: int = typer.Option(
        None, "--think-budget", help="Close the reasoning after N (0 or more) tokens, then answer."
    ),
    hide_thinking: bool = typer.Option(
        False, "--hide-thinking", help="Do not show the reasoning on stderr (it is still saved)."
    ),
    n_ctx: int = typer.Option(
        None, "--ctx", help="Context size in tokens (64 or more, at most the trained context)."
    ),
    beyond_trained: bool = typer.Option(
        False, "--force-ctx", help="Keep --ctx even above the context the model was trained on."
    ),
    gpu_layers: str = typer.Option(None, "--gpu-layers", help="auto, 0 (CPU) or N layers."),
    threads: int = typer.Option(None, "--threads", help="CPU threads (1 to 512)."),
    kv_type: str = typer.Option(None, "--kv-type", help=KV_TYPE_HELP),
    flash_attn: str = typer.Option(None, "--flash-attn", help=FLASH_ATTN_HELP),
    chat_template: str = typer.Option(
        None, "--chat-template", help="A built-in format name or a Jinja file."
    ),
    continue_: bool = typer.Option(
        False, "-c", "--continue", help="Continue the most recent conversation."
    ),
    cid: str = typer.Option(None, "--cid", help="Continue this conversation (an id prefix)."),
    no_save: bool = typer.Option(False, "--no-save", help="Do not save this exchange."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object at the end."),
    stats: bool = typer.Option(False, "--stats", help="Print timings and speed to stderr."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Say what loading chose."),
) -> None:
    """Ask a model once: `termllm ask "question"`, or `cat file | termllm ask "summarize"`."""
    from termllm.cli.ask_turn import AskListener, Ended, run_turn
    from termllm.services.chat import LoadOptions, parse_gpu_layers, parse_think
    from termllm.services.turn import NewQuestion, TurnOptions

    overrides = {
        "temperature": temperature,
        "top_p": top_p,
        "top_k": top_k,
        "min_p": min_p,
        "repeat_penalty": repeat_penalty,
        "seed": seed,
        "max_tokens": max_tokens,
        "think": parse_think(think, "--think") if think is not None else None,
        "think_budget": think_budget,
    }
    # Checked first: a bad value is a usage error before anything is read or saved.
    for name, value in overrides.items():
        check_flag(f"--{name.replace('_', '-')}", FIELDS_BY_NAME[name], value)
    check_flag("--ctx", FIELDS_BY_NAME[CONTEXT_KEY], n_ctx)
    check_flag("--threads", THREADS, threads)
    kv_cache_type, flash_attention = memory_flags(kv_type, flash_attn)
    check_cid(cid)
    found = services(ctx)
    check_memory_flags(kv_cache_type, flash_attention, found.config.settings.models)
    text = _prompt_text(prompt or [])
    options = TurnOptions(
        # Bytes that are not UTF-8 become U+FFFD in text (the history cannot hold them), but a
        # model's file name keeps them: the reference is read by the one grammar in refs.py.
        model_ref=model,
        system_prompt=argument_text(system) if system is not None else None,
        params={name: value for name, value in overrides.items() if value is not None},
        load=LoadOptions(
            n_ctx=n_ctx,
            beyond_trained=beyond_trained,
            gpu_layers=parse_gpu_layers(gpu_layers, "--gpu-layers") if gpu_layers else None,
            threads=threads,
            chat_template=chat_template,
            kv_cache_type=kv_cache_type,
            flash_attention=flash_attention,
        ),
        save=found.history.enabled_by_default and not no_save,
    )
    conversation_id = argument_text(cid) if cid is not None else None
    turn = NewQuestion(text, conversation_id=conversation_id, latest=continue_)
    writer = _answer_writer(as_json)
    hidden = hide_thinking or found.config.settings.generation.hide_thinking
    listener = AskListener(writer, verbose, show_thinking=not hidden and sys.stderr.isatty())
    try:
        result = run_turn(found.turns, turn, options, listener)
    except Ended as ended:
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            note(f"termllm: stopped by {ended}")
        raise typer.Exit(ended.exit_code) from None
    finally:
        if writer is not None:
            writer.finish()
    found.turns.settle(listener)
    completion = result.completion
    if as_json:
        answer = _json_result(result.model_ref, completion)
        answer["conversation_id"] = result.conversation_id
        answer["message_id"] = result.answer_id
        answer["load"] = _load_json(listener.load_report)
        print_json(answer)
    if stats:
        note(_stats_line(completion))
    if completion.finish_reason is FinishReason.ERROR:
        note(f"termllm: error: generation failed: {completion.error}")
        raise typer.Exit(ExitCode.NETWORK if completion.server_failed else ExitCode.ERROR)
    if completion.finish_reason is FinishReason.CANCELLED:
        raise typer.Exit(ExitCode.INTERRUPTED)


def _prompt_text(words: list[str]) -> str:
    prompt = argument_text(" ".join(words)).strip()
    piped = ""
    if not sys.stdin.isatty():
        # Invalid UTF-8 (a binary file, a legacy encoding) is replaced rather than fatal.
        piped = sys.stdin.buffer.read().decode("utf-8", errors="replace").strip()
    text = join_prompt(prompt, piped)
    if not text:
        raise UsageError('nothing to ask: give a prompt (termllm ask "…") or pipe text in')
    return text


def join_prompt(question: str, piped: str) -> str:
    """The piped text first, the question after it. Two questions about the same text then
    start with the same tokens, so the second reads only itself (the prefix cache). With the
    starter model, answers were as good this way on short texts and far better on long ones
    (benchmarks/pipe_order.py)."""
    return "\n\n".join(part for part in (piped, question) if part)


def _answer_writer(as_json: bool) -> AnswerWriter | None:
    if as_json:
        return None
    if not sys.stdout.isatty():
        return PlainWriter()
    # Rich's Markdown stack costs a noticeable share of start-up; pipes never need it.
    from termllm.cli.answer_render import MarkdownWriter

    return MarkdownWriter(stdout_console())


def _json_result(model_ref: str, completion: Completion) -> dict[str, Any]:
    timings = completion.timings
    return {
        "model": model_ref,
        "content": completion.content,
        "reasoning": completion.reasoning,
        "finish_reason": completion.finish_reason.value,
        "usage": {
            "prompt_tokens": completion.usage.prompt_tokens,
            "completion_tokens": completion.usage.completion_tokens,
            "reasoning_tokens": completion.usage.reasoning_tokens,
        },
        "timings": {
            "ttft_ms": round(timings.ttft_ms, 1),
            "prompt_tokens_per_s": round(timings.prompt_tokens_per_s, 1) or None,
            "decode_tokens_per_s": round(timings.decode_tokens_per_s, 1) or None,
            "load_ms": round(timings.load_ms, 1),
            "cached_tokens": timings.cached_tokens,
        },
    }


def _load_json(report: LoadReport | None) -> dict[str, Any] | None:
    """What loading chose, as `-v` says it (None: the turn ended before a model was loaded)."""
    if report is None:
        return None
    placement = report.placement
    return {
        "n_ctx": report.n_ctx,
        "threads": report.threads,
        "gpu_layers": placement.blocks_on_gpu,
        "total_layers": placement.total_layers,
        "device": placement.device,
        "placement_reason": placement.reason,
        "kv_cache_type": report.kv_cache_type.value,
        "flash_attention": report.flash_attention,
        "chat_template": report.chat_template,
        "server": report.server,
    }


def _stats_line(completion: Completion) -> str:
    usage, timings = completion.usage, completion.timings
    # A server that reports no usage leaves counts and speeds unknown: never shown as 0.
    return (
        f"{_known(usage.prompt_tokens)} prompt tokens ({timings.cached_tokens} cached), "
        f"{_known(usage.completion_tokens)} generated"
        f"{f' ({usage.reasoning_tokens} reasoning)' if usage.reasoning_tokens else ''} · "
        f"load {timings.load_ms:.0f} ms · first token {timings.ttft_ms:.0f} ms · "
        f"prompt {_rate(timings.prompt_tokens_per_s, '.0f')} · "
        f"decode {_rate(timings.decode_tokens_per_s, '.1f')} · {completion.finish_reason.value}"
    )


def register(app: typer.Typer) -> None:
    app.command()(ask)


def _known(count: int | None) -> str:
    return "unknown" if count is None else str(count)


def _rate(tokens_per_s: float, spec: str) -> str:
    return f"{tokens_per_s:{spec}} tok/s" if tokens_per_s > 0 else "unknown tok/s"
