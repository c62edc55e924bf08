"""Commands that read a flow without running it: validate, graph, export."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from batchflow.cli.output import (
    EXIT_BAD_INPUT,
    OutputFormat,
    console,
    error_line,
    failures,
    print_json,
)

if TYPE_CHECKING:
    from rich.table import Table

    from batchflow.dsl import Job
    from batchflow.loader import Flow
    from batchflow.validation import Problem

FlowArg = Annotated[
    Path,
    typer.Argument(help="A .py file defining Jobs, or Batch task/job JSON.", show_default=False),
]
JobIdOpt = Annotated[
    str | None,
    typer.Option("--job-id", help="Job id for task-only JSON (default: the file name)."),
]
PoolIdOpt = Annotated[str | None, typer.Option("--pool-id", help="Pool id for task-only JSON.")]
JobOpt = Annotated[
    str | None, typer.Option("--job", "-j", help="Which job, when the flow defines several.")
]
OutputOpt = Annotated[
    OutputFormat, typer.Option("--output", "-O", help="text for people, json for machines.")
]


class GraphFormat(enum.StrEnum):
    """`graph --format`."""

    mermaid = "mermaid"
    dot = "dot"
    text = "text"


def _load(path: Path, job_id: str | None, pool_id: str | None) -> Flow:
    from batchflow.loader import load

    return load(path, job_id=job_id, pool_id=pool_id)


def validate(
    flow: FlowArg,
    job_id: JobIdOpt = None,
    pool_id: PoolIdOpt = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Check a flow against Azure Batch's rules: every error and warning at once.

    Exit code 0 when there is no error (warnings allowed), 2 otherwise.
    """
    with failures():
        loaded = _load(flow, job_id, pool_id)
        problems = loaded.validate()
        errors = [p for p in problems if p.severity == "error"]
        warnings = [p for p in problems if p.severity == "warning"]
        if output is OutputFormat.json:
            print_json(
                {
                    "file": str(flow),
                    "valid": not errors,
                    "jobs": [_job_summary(job) for job in loaded.jobs],
                    "errors": [p.to_dict() for p in errors],
                    "warnings": [p.to_dict() for p in warnings],
                }
            )
        else:
            for problem in errors:
                error_line(f"error: {problem}")
            out = console()
            for job in loaded.jobs:
                summary = _job_summary(job)
                mine = [p for p in problems if p.job_id in (job.id, None)]
                n_err = sum(p.severity == "error" for p in mine)
                out.print(
                    f"[bold]{job.id}[/]  {_plural(summary['tasks'], 'task')}  "
                    f"{summary['levels']:,} "
                    f"level{'s' if summary['levels'] != 1 else ''}  "
                    f"{n_err} error{'s' if n_err != 1 else ''}  "
                    f"{len(mine) - n_err} warning{'s' if len(mine) - n_err != 1 else ''}"
                )
            if warnings:
                out.print(_problem_table(warnings))
        if errors:
            raise typer.Exit(EXIT_BAD_INPUT)


def _plural(count: int | str, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _job_summary(job: Job) -> dict[str, int | str]:
    from batchflow.graph import Graph

    graph = Graph.of(job)
    levels = 0
    if graph.find_cycle() is None and not graph.unknown:
        depth = [0] * len(graph.deps)
        for pos in graph.topological_order():
            ds = graph.deps[pos]
            depth[pos] = 1 + max((depth[d] for d in ds), default=0)
        levels = max(depth, default=0)
    return {"id": job.id, "tasks": len(job.tasks), "levels": levels}


def _problem_table(problems: list[Problem]) -> Table:
    from rich.table import Table

    from batchflow.redact import redact

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("", "where", "field", "message"):
        table.add_column(column, overflow="fold")
    for problem in problems:
        where = f"{problem.task_id or problem.job_id}" + (
            f":{problem.line}" if problem.line else ""
        )
        mark = "[red]error[/]" if problem.severity == "error" else "[yellow]warning[/]"
        table.add_row(mark, where, problem.field or "", redact(problem.message))
    return table


def graph(
    flow: FlowArg,
    format: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="Drawing format.")
    ] = GraphFormat.mermaid,
    job: JobOpt = None,
    collapse: Annotated[
        int,
        typer.Option(help="Draw groups of at least this many similar tasks as one node.", min=2),
    ] = 5,
    job_id: JobIdOpt = None,
    pool_id: PoolIdOpt = None,
) -> None:
    """Draw the dependency graph (mermaid, as the tutorial draws it; dot; or text)."""
    with failures():
        from batchflow.graph import Graph, render

        loaded = _load(flow, job_id, pool_id)
        loaded.check()
        chosen = loaded.jobs if job is None else [loaded.job(job)]
        typer.echo(
            "".join(render(Graph.of(j), format.value, collapse=collapse) for j in chosen), nl=False
        )


def export(
    flow: FlowArg,
    tasks_only: Annotated[
        bool,
        typer.Option(
            "--tasks-only", help="Only the task array (az batch task create --json-file)."
        ),
    ] = False,
    job_only: Annotated[
        bool,
        typer.Option("--job-only", help="Only the job document (az batch job create --json-file)."),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
    job: JobOpt = None,
    job_id: JobIdOpt = None,
    pool_id: PoolIdOpt = None,
) -> None:
    """Print the JSON that Azure Batch takes: the job with its tasks, or either alone."""
    with failures():
        from batchflow.exceptions import FlowLoadError
        from batchflow.export import write_job

        if tasks_only and job_only:
            raise FlowLoadError(
                "--tasks-only and --job-only exclude each other", field="--tasks-only"
            )
        loaded = _load(flow, job_id, pool_id)
        loaded.check()
        chosen = loaded.job(job)
        staged = sum(1 for t in chosen.tasks if t.inputs or t.outputs)
        if staged:
            error_line(
                f"note: {staged:,} task(s) use inputs=/outputs=, which batchflow stages when it "
                "submits; the exported JSON does not carry them"
            )
        if out is None:
            write_job(chosen, sys.stdout, tasks_only=tasks_only, with_tasks=not job_only)
            return
        try:
            with open(out, "w", encoding="utf-8") as stream:
                write_job(chosen, stream, tasks_only=tasks_only, with_tasks=not job_only)
        except OSError as exc:
            raise FlowLoadError(
                f"cannot write: {exc.strerror}", file=str(out), field="--out"
            ) from None


def register(app: typer.Typer) -> None:
    """Add this group's commands to the application."""
    app.command()(validate)
    app.command()(graph)
    app.command()(export)
