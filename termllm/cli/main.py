"""The `termllm` entry point: the Typer app, and the one place errors become exit codes."""

from __future__ import annotations

import os
import sys
import traceback

import typer

from termllm import __version__
from termllm.cli.commands import LazyCommandGroup
from termllm.cli.context import LazyServices
from termllm.errors import ExitCode, TermllmError

app = typer.Typer(
    name="termllm",
    cls=LazyCommandGroup,
    help="Chat with local GGUF models from your terminal.",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"termllm {__version__}\n")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Chat with local GGUF models from your terminal."""
    ctx.obj = LazyServices()
    if ctx.invoked_subcommand is None:
        # Bare `termllm` opens the chat app, as `termllm chat` would.
        from termllm.cli.chat_cmd import chat

        ctx.invoke(chat, ctx, model=None, cid=None)


def run(argv: list[str] | None = None) -> None:
    """Console-script entry: run the app and turn every failure into a message and exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("TERMLLM_DEBUG") == "1"
    sys.exit(_invoke(args, debug))


def _invoke(args: list[str], debug: bool) -> int:
    try:
        result = app(args=args, prog_name="termllm", standalone_mode=False)
    except typer.Exit as exit_:
        return exit_.exit_code
    except typer.TyperException as err:
        # Typer's own usage errors (unknown option, missing argument): one line, with a hint.
        context = getattr(err, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        sys.stderr.write(f"termllm: error: {err.format_message()}{hint}\n")
        return err.exit_code
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("termllm: interrupted\n")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return ExitCode.OK
    except TermllmError as err:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"termllm: error: {err.message}\n")
        return err.exit_code
    except Exception as err:
        if debug:
            traceback.print_exc()
        sys.stderr.write(
            f"termllm: unexpected error: {type(err).__name__}: {err}"
            " (run with --debug for details)\n"
        )
        return ExitCode.ERROR
    return result if isinstance(result, int) else ExitCode.OK


def _silence_stdout() -> None:
    # After a broken pipe, Python would complain again while flushing stdout at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
