"""`batchflow`: the application, its global options and how it exits.

Exit codes (documented in the README): 0 success, 1 a workload failed, 2 bad input or
usage, 3 an internal error (a bug: rerun with `--debug` for the traceback), 130 Ctrl-C.
Only typer, click and this package's light modules are imported before a command runs,
so `batchflow --help` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from batchflow._version import __version__
from batchflow.cli import emulator as emulator_commands
from batchflow.cli import flow as flow_commands
from batchflow.cli import infra as infra_commands
from batchflow.cli import jobs as job_commands
from batchflow.cli import run as run_commands
from batchflow.cli.target import choose, command_name, hoist


def _plain_coercion() -> None:
    """Coerce plain parameters (str, Path, enums, unconstrained) without pydantic.

    typer builds a pydantic TypeAdapter for every parameter of the command that runs
    (importing pydantic and generating a schema each: tens of milliseconds per command).
    Our parameters are mostly strings, paths and enums, which need no such machinery: this
    converts those directly, and hands anything else, and any value it cannot convert, to
    typer's own coercion, so errors read exactly as typer words them. It hooks typer's
    `core.build_runtime_param` (typer is pinned in requirements.lock); with a typer that
    has no such hook nothing changes but the speed.
    """
    import dataclasses
    import enum
    from pathlib import Path

    try:
        from typer import _coercion
        from typer import core as typer_core
    except ImportError:  # pragma: no cover - another typer
        return
    original: Any = getattr(typer_core, "build_runtime_param", None)
    base: Any = getattr(_coercion, "RuntimeParam", None)
    if original is None or base is None or getattr(original, "_batchflow", False):
        return

    @dataclasses.dataclass(frozen=True)
    class Plain(base):  # type: ignore[misc]
        descriptor: Any = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            kind = self.annotation
            if isinstance(value, kind):
                return value
            if isinstance(value, str):
                if kind is str:
                    return value
                if kind is Path:
                    return Path(value)
                if issubclass(kind, enum.Enum):
                    with contextlib.suppress(ValueError):
                        return kind(value)
            return original(self.descriptor)._coerce_value(value, param, ctx)

    path_checks = ("exists", "resolve_path", "allow_dash", "path_type", "writable")

    def build(descriptor: Any) -> Any:
        info, kind = descriptor.parameter_info, descriptor.annotation
        plain = (
            descriptor.file_annotation is None
            and getattr(info, "parser", None) is None
            and isinstance(kind, type)
            and (kind in (str, Path, bool) or issubclass(kind, enum.Enum))
            and not (kind is Path and any(getattr(info, a, None) for a in path_checks))
            and not (kind is Path and getattr(info, "file_okay", True) is False)
            and not (kind is Path and getattr(info, "dir_okay", True) is False)
            and getattr(info, "case_sensitive", True) is not False
        )
        if plain:
            return Plain(info, kind, descriptor)
        return original(descriptor)

    build._batchflow = True  # type: ignore[attr-defined]
    setattr(typer_core, "build_runtime_param", build)  # noqa: B010  # not exported by typer


_plain_coercion()


class _Group(TyperGroup):
    """Turns usage errors into one line on stderr and exit code 2."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        # click's UsageError, which typer vendors without exporting it.
        usage_error: type[Exception] = typer.BadParameter.__mro__[1]
        args = hoist(_take_debug(list(sys.argv[1:] if args is None else args)))
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except usage_error as exc:
            ctx = getattr(exc, "ctx", None)
            command = ctx.command_path if ctx else "batchflow"
            message = exc.format_message()  # type: ignore[attr-defined]  # noqa: RUF100
            message = message.replace("Value error, ", "")  # pydantic's prefix says nothing
            if type(exc).__name__ == "NoArgsIsHelpError":  # `batchflow`, `batchflow infra`
                typer.echo(message, err=True)  # the message is the usage and the commands
            else:
                typer.echo(f"{command}: error: {message} (see '{command} --help')", err=True)
            code = 2
        except typer.TyperException as exc:  # click's other errors (file errors, ...)
            typer.echo(f"batchflow: error: {exc}", err=True)
            code = int(getattr(exc, "exit_code", 1))
        except typer.Exit as exc:
            code = exc.exit_code
        except (typer.Abort, KeyboardInterrupt):
            typer.echo("batchflow: interrupted", err=True)
            code = 130
        else:
            code = result if isinstance(result, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _take_debug(args: list[str]) -> list[str]:
    """`args` without `--debug`, which then sets BATCHFLOW_DEBUG: the option works after
    the subcommand too (`batchflow submit FLOW --debug`), not only before it."""
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args
    os.environ["BATCHFLOW_DEBUG"] = "1"
    return [a for a in args[:end] if a != "--debug"] + args[end:]


_APP_SETTINGS: dict[str, Any] = {
    "name": "batchflow",
    "cls": _Group,
    "help": "Run parallel workloads with Azure Batch semantics: here, or on a pool.",
    "no_args_is_help": True,
    "add_completion": False,
    "pretty_exceptions_enable": False,
    # Plain help: rich's help rendering would import rich and markdown on every --help.
    "rich_markup_mode": None,
    "context_settings": {"help_option_names": ["-h", "--help"]},
}
app = typer.Typer(**_APP_SETTINGS)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"batchflow {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar="BATCHFLOW_DEBUG", help="Show tracebacks of internal errors."
        ),
    ] = False,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            help="Run on this Pulumi stack's Batch account (`pulumi stack output`); before "
            "or after the command.",
            show_default=False,
        ),
    ] = None,
    stack_outputs: Annotated[
        str | None,
        typer.Option(
            "--stack-outputs",
            help="Run on the Batch account in this file of `pulumi stack output --json`.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Jobs and task graphs for Azure Batch, as code.

    Commands run on this machine, or on Azure Batch with --stack, --stack-outputs or the
    AZURE_BATCH_ENDPOINT / AZURE_BATCH_ACCOUNT / AZURE_BATCH_ACCESS_KEY variables that
    `az batch` reads.

    Exit codes: 0 success, 1 a task failed, 2 bad input or usage, 3 internal error.
    """
    if debug:
        os.environ["BATCHFLOW_DEBUG"] = "1"
    choose(stack, stack_outputs)


flow_commands.register(app)
run_commands.register(app)
job_commands.register(app)
emulator_commands.register(app)
app.add_typer(infra_commands.app, name="infra")


def app_for(args: Sequence[str]) -> typer.Typer:
    """The application with only the command that `args` names registered.

    typer turns every registered command into a click command (reading each function's
    signature and annotations) before it runs one; with one command registered, that
    work is done once instead of fourteen times. Help, a bad or missing command name and
    top-level options get the whole application.
    """
    name = command_name(list(args))
    if name is None:
        return app
    commands = [
        c
        for c in app.registered_commands
        if (c.name or getattr(c.callback, "__name__", "").replace("_", "-")) == name
    ]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:
        return app
    slim = typer.Typer(**_APP_SETTINGS)
    slim.registered_callback = app.registered_callback
    slim.registered_commands = commands
    slim.registered_groups = groups
    return slim


def run() -> None:
    """Console-script entry point.

    The process ends with `os._exit` once the command is done and the standard streams
    are flushed: by then everything was committed and closed, and the interpreter's own
    teardown (freeing pydantic's and rich's modules one by one) would add 0.1 s to every
    command. A broken pipe on the way out (`batchflow jobs | head`) is not an error.
    """
    code: int = 0
    try:
        app_for(sys.argv[1:])()
    except KeyboardInterrupt:  # between typer's handling and ours
        print("batchflow: interrupted", file=sys.stderr)
        code = 130
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
