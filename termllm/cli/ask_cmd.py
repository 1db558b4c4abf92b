"""`termllm ask`: one prompt in, the answer streamed out; stdin is joined to the prompt."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import typer

from termllm.cli.answer_plain import AnswerWriter, PlainWriter
from termllm.cli.context import services
from termllm.cli.output import note, print_json, stderr_console, stdout_console
from termllm.domain import (
    Completion,
    FinishReason,
    GenParams,
    Message,
    Role,
    TextChunk,
    Timings,
    Usage,
)
from termllm.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from termllm.domain import LocalModel
    from termllm.engine.base import LoadedModel, LoadReport
    from termllm.services.chat import ChatService, FittedPrompt, LoadOptions


def ask(
    ctx: typer.Context,
    prompt: list[str] = typer.Argument(None, help="The prompt; piped stdin is appended to it."),
    model: str = typer.Option(None, "-m", "--model", help="Model reference (see `termllm ls`)."),
    system: str = typer.Option(None, "-s", "--system", help="System prompt."),
    temperature: float = typer.Option(None, "--temperature", min=0.0, help="0 is greedy."),
    top_p: float = typer.Option(None, "--top-p", min=0.0, max=1.0),
    top_k: int = typer.Option(None, "--top-k", min=0),
    min_p: float = typer.Option(None, "--min-p", min=0.0, max=1.0),
    repeat_penalty: float = typer.Option(None, "--repeat-penalty", min=0.0),
    seed: int = typer.Option(None, "--seed", min=0, help="Seed for reproducible sampling."),
    max_tokens: int = typer.Option(None, "--max-tokens", min=1, help="Longest answer."),
    n_ctx: int = typer.Option(None, "--ctx", min=64, help="Context size in tokens."),
    gpu_layers: str = typer.Option(None, "--gpu-layers", help="auto, 0 (CPU) or N layers."),
    threads: int = typer.Option(None, "--threads", min=1, help="CPU threads."),
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
    from termllm.services.chat import LoadOptions, parse_gpu_layers
    from termllm.services.conversation_settings import settings_of

    found = services(ctx)
    chat = found.chat
    text = _prompt_text(prompt or [])
    history = found.history
    save = history.enabled_by_default and not no_save
    resumed = history.resume(cid) if (continue_ or cid) else None
    # A continued conversation keeps its own settings; flags override them for this answer.
    saved = settings_of(chat, resumed.conversation if resumed else None)
    params = _params(
        saved.params,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        min_p=min_p,
        repeat_penalty=repeat_penalty,
        seed=seed,
        max_tokens=max_tokens,
    )
    options = LoadOptions(
        n_ctx=n_ctx if n_ctx is not None else saved.n_ctx,
        gpu_layers=parse_gpu_layers(gpu_layers, "--gpu-layers") if gpu_layers else None,
        threads=threads,
        chat_template=chat_template,
    )
    chosen = chat.choose_model(model or (resumed.conversation.model if resumed else None))
    loaded = _load(chat, chosen, options)
    report = loaded.report
    _report_load(report, verbose)
    system_prompt = system if system is not None else saved.system_prompt
    messages = [*(resumed.messages if resumed else ()), Message(Role.USER, text)]
    if system_prompt:
        messages.insert(0, Message(Role.SYSTEM, system_prompt))
    fitted = chat.fit(loaded, messages, params)
    for warning in fitted.warnings:
        note(f"warning: {warning}")
    exchange = (
        history.save_question(resumed, chosen.ref, system_prompt, params, text, options.n_ctx)
        if save
        else None
    )
    conversation_id = exchange.conversation_id if exchange else None
    # A --no-save continuation still starts from the conversation's saved state.
    state_of = conversation_id or (resumed.conversation.id if resumed else None)
    writer = _answer_writer(as_json)
    completion = _generate(chat, loaded, state_of, fitted, params, writer, report.load_ms)
    answer = history.save_answer(exchange, completion, chosen.ref) if exchange else None
    if as_json:
        result = _json_result(chosen.ref, completion)
        result["conversation_id"] = exchange.conversation_id if exchange else None
        result["message_id"] = answer.id if answer else None
        print_json(result)
    if stats:
        note(_stats_line(completion))
    if conversation_id and completion.finish_reason in (FinishReason.STOP, FinishReason.LENGTH):
        chat.keep_state(loaded, conversation_id)
    if completion.finish_reason is FinishReason.ERROR:
        note(f"termllm: error: generation failed: {completion.error}")
        raise typer.Exit(ExitCode.ERROR)
    if completion.finish_reason is FinishReason.CANCELLED:
        raise typer.Exit(ExitCode.INTERRUPTED)


def _prompt_text(words: list[str]) -> str:
    prompt = " ".join(words).strip()
    piped = ""
    if not sys.stdin.isatty():
        # Invalid UTF-8 (a binary file, a legacy encoding) is replaced rather than fatal.
        piped = sys.stdin.buffer.read().decode("utf-8", errors="replace").strip()
    text = "\n\n".join(part for part in (prompt, piped) if part)
    if not text:
        raise UsageError('nothing to ask: give a prompt (termllm ask "…") or pipe text in')
    return text


def _params(defaults: GenParams, **overrides: Any) -> GenParams:
    given = {name: value for name, value in overrides.items() if value is not None}
    return replace(defaults, **given)


def _load(chat: ChatService, model: LocalModel, options: LoadOptions) -> LoadedModel:
    if not sys.stderr.isatty():
        return chat.load(model, options)
    with stderr_console().status(f"loading {model.ref}…", spinner="dots"):
        return chat.load(model, options)


def _answer_writer(as_json: bool) -> AnswerWriter | None:
    if as_json:
        return None
    if not sys.stdout.isatty():
        return PlainWriter()
    # Rich's Markdown stack costs a noticeable share of start-up; pipes never need it.
    from termllm.cli.answer_render import MarkdownWriter

    return MarkdownWriter(stdout_console())


def _report_load(report: LoadReport, verbose: bool) -> None:
    for warning in report.warnings:
        note(f"warning: {warning}")
    if verbose:
        placement = report.placement
        note(
            f"context {report.n_ctx} tokens · {report.threads} threads · "
            f"GPU layers {placement.gpu_layers}/{placement.total_layers} on {placement.device}"
            f" ({placement.reason}) · template {report.chat_template}"
            f" · loaded in {report.load_ms:.0f} ms"
        )


def _generate(
    chat: ChatService,
    loaded: LoadedModel,
    conversation_id: str | None,
    fitted: FittedPrompt,
    params: GenParams,
    writer: AnswerWriter | None,
    load_ms: float,
) -> Completion:
    cancel = threading.Event()
    parts: list[str] = []
    started = time.perf_counter()
    completion: Completion | None = None
    try:
        for chunk in chat.stream(loaded, conversation_id, fitted.messages, params, cancel):
            if isinstance(chunk, TextChunk):
                parts.append(chunk.text)
                if writer is not None:
                    writer.write(chunk.text)
            else:
                completion = chunk
    except KeyboardInterrupt:
        # Ctrl-C lands between tokens: keep what was produced, as the engine would on cancel.
        cancel.set()
        elapsed_ms = (time.perf_counter() - started) * 1000
        completion = Completion(
            content="".join(parts),
            finish_reason=FinishReason.CANCELLED,
            # One chunk per generated token, short of text held back at a possible stop marker.
            usage=Usage(prompt_tokens=fitted.prompt_tokens, completion_tokens=len(parts)),
            timings=Timings(load_ms, elapsed_ms, 0.0, 0.0),
        )
    finally:
        if writer is not None:
            writer.finish()
    assert completion is not None, "an engine stream always ends with a Completion"
    return replace(completion, timings=replace(completion.timings, load_ms=load_ms))


def _json_result(model_ref: str, completion: Completion) -> dict[str, Any]:
    timings = completion.timings
    return {
        "model": model_ref,
        "content": completion.content,
        "finish_reason": completion.finish_reason.value,
        "usage": {
            "prompt_tokens": completion.usage.prompt_tokens,
            "completion_tokens": completion.usage.completion_tokens,
        },
        "timings": {
            "ttft_ms": round(timings.ttft_ms, 1),
            "prompt_tokens_per_s": round(timings.prompt_tokens_per_s, 1),
            "decode_tokens_per_s": round(timings.decode_tokens_per_s, 1),
            "load_ms": round(timings.load_ms, 1),
            "cached_tokens": timings.cached_tokens,
        },
    }


def _stats_line(completion: Completion) -> str:
    usage, timings = completion.usage, completion.timings
    return (
        f"{usage.prompt_tokens} prompt tokens ({timings.cached_tokens} cached), "
        f"{usage.completion_tokens} generated · "
        f"load {timings.load_ms:.0f} ms · first token {timings.ttft_ms:.0f} ms · "
        f"prompt {timings.prompt_tokens_per_s:.0f} tok/s · "
        f"decode {timings.decode_tokens_per_s:.1f} tok/s · {completion.finish_reason.value}"
    )


def register(app: typer.Typer) -> None:
    app.command()(ask)
