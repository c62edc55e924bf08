"""`batchflow infra`: the Azure resources the Pulumi program provisions, checked offline.

`batchflow infra plan --stack dev` runs the real Pulumi program (`__main__.py`) with the
stack's settings under mocks: no Pulumi CLI, no provider plugin, no Azure login. A
reviewer or a CD pipeline sees what `pulumi up --stack dev` would create, and bad settings
fail here first (one line each on stderr, exit code 2). Pulumi is imported only when the
command runs, never at the CLI's start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from batchflow.cli.output import OutputFormat, console, failures, print_json

if TYPE_CHECKING:
    from batchflow.infra.plan import Plan

__all__ = ["app"]

app = typer.Typer(
    name="infra",
    help="Provision Azure with Pulumi: check a stack offline before `pulumi up`.",
    no_args_is_help=True,
)

StackOpt = Annotated[
    str,
    typer.Option(
        "--stack",
        "-s",
        envvar="BATCHFLOW_STACK",
        help="Stack name: its settings are stacks/Pulumi.<stack>.yaml.",
        show_default=False,
    ),
]
ProjectDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--project-dir",
        help="Directory of batchflow's Pulumi.yaml (default: here or the nearest parent).",
        file_okay=False,
    ),
]
OutputOpt = Annotated[
    OutputFormat, typer.Option("--output", "-O", help="text for people, json for machines.")
]


@app.command("plan")
def plan(
    stack: StackOpt,
    output: OutputOpt = OutputFormat.text,
    project_dir: ProjectDirOpt = None,
) -> None:
    """What `pulumi up --stack STACK` would create, worked out offline.

    Lists every resource with its key settings (SKU, TLS, scale, subnet, ...), the stack
    outputs the CLI consumes, what the settings leave open (storage open to every network,
    public node IPs, unprotected data, ...), and what an offline plan cannot check (quotas,
    replacements of deployed resources). Ids, random name suffixes and endpoints come from
    mocks. Warnings go to stderr. Exit code 0 when the stack is valid, 2 when a setting or
    file is wrong.
    """
    with failures():
        result = _plan(stack, project_dir)
        if output is OutputFormat.json:
            print_json(result.to_json())
        else:
            _render(result)
            for warning in result.warnings:
                typer.echo(f"warning: {warning}", err=True)


def _plan(stack: str, project_dir: Path | None) -> Plan:
    from batchflow.exceptions import InfraConfigError
    from batchflow.infra.config import StackConfigError

    try:
        from batchflow.infra.plan import PlanError, find_project_dir, plan_stack
    except ImportError as exc:  # the `infra` extra (pulumi, pulumi-azure-native) is missing
        raise InfraConfigError(
            f"{exc.name or 'pulumi'} is not installed: pip install 'batchflow[infra]'"
        ) from None
    try:
        directory = project_dir if project_dir is not None else find_project_dir(Path.cwd())
        return plan_stack(stack, directory)
    except StackConfigError as exc:
        lines = [str(problem) for problem in exc.problems]
        # `failures()` prefixes the first line with "error: "; the others get it here.
        raise InfraConfigError(
            "\nerror: ".join(lines), stack=exc.stack, key=exc.key, problems=lines
        ) from None
    except PlanError as exc:
        raise InfraConfigError(str(exc), stack=stack) from None


def _render(result: Plan) -> None:
    from rich.markup import escape
    from rich.table import Table

    from batchflow.redact import redact

    out = console()
    azure = [r for r in result.resources if r.custom]
    out.print(
        f"[bold]stack {result.stack}[/]  {len(azure)} Azure resources  "
        f"(from {result.stack_file}; ids and endpoints are mocked)"
    )
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("resource", "type", "key settings"):
        table.add_column(column, overflow="fold")
    for r in result.resources:
        indent = "  " * r.depth
        kind = r.type.removeprefix("azure-native:")
        name = f"{indent}{r.name}" if r.custom else f"{indent}[bold]{escape(r.name)}[/]"
        settings = "  ".join(f"{k}={_text(v)}" for k, v in r.settings.items())
        if r.protect:
            settings = f"protected  {settings}".rstrip()
        table.add_row(escape(name) if r.custom else name, kind, escape(redact(settings)))
    out.print(table)
    outputs = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    outputs.add_column("stack output")
    outputs.add_column("value", overflow="fold")
    for key, value in result.outputs.items():
        outputs.add_row(key, escape(redact(_text(value))))
    out.print()
    out.print(outputs)
    if result.left_open:
        out.print()
        out.print("[bold]left open by this stack's settings[/]")
        for line in result.left_open:
            out.print(f"- {escape(line)}")
    out.print()
    out.print("[bold]not checked offline[/]")
    for line in result.not_checked:
        out.print(f"- {escape(line)}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return str(value)
