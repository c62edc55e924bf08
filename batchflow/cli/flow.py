"""Commands that read a flow without running it: validate, graph, export."""

from __future__ import annotations

import contextlib
import enum
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from batchflow.cli.output import (
    EXIT_BAD_INPUT,
    OutputFormat,
    error_line,
    failures,
    print_json,
)

if TYPE_CHECKING:
    from batchflow.backends.base import Backend
    from batchflow.dsl import Job
    from batchflow.loader import Flow
    from batchflow.validation import JobTasks, Problem

FlowArg = Annotated[
    Path,
    typer.Argument(help="A .py file defining Jobs, or Batch task/job JSON.", show_default=False),
]
JobIdOpt = Annotated[
    str | None,
    typer.Option("--job-id", help="Job id for task-only JSON (default: the file name)."),
]
PoolIdOpt = Annotated[
    str | None, typer.Option("--pool-id", help="Pool id for jobs that name none (task JSON).")
]
JobOpt = Annotated[
    str | None, typer.Option("--job", "-j", help="Which job, when the flow defines several.")
]
OutputOpt = Annotated[
    OutputFormat, typer.Option("--output", "-O", help="text for people, json for machines.")
]
StrictOpt = Annotated[
    bool, typer.Option("--strict", help="Treat warnings as errors (exit 2), e.g. in CI.")
]
StateDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="BATCHFLOW_STATE_DIR",
        help="Where the local engine keeps its state (default: ./.batchflow).",
        show_default=False,
    ),
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
    strict: StrictOpt = False,
    state_dir: StateDirOpt = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Check a flow as Batch and submit would: every error and warning at once.

    A dependency on a task that is not in the flow is an error unless the job already
    exists where submit would put it (the state directory, or the target) and has that
    task. Exit code 0 when there is no error (warnings allowed, unless --strict), 2
    otherwise.
    """
    with failures():
        loaded = _load(flow, job_id, pool_id)
        with _stored_jobs(state_dir) as existing:
            problems = loaded.validate(existing=existing)
        errors = [p for p in problems if p.severity == "error"]
        warnings = [p for p in problems if p.severity == "warning"]
        failed = bool(errors) or (strict and bool(warnings))
        if output is OutputFormat.json:
            print_json(
                {
                    "file": str(flow),
                    "valid": not failed,
                    "jobs": [_job_summary(job) for job in loaded.jobs],
                    "errors": [p.to_dict() for p in errors],
                    "warnings": [p.to_dict() for p in warnings],
                }
            )
        else:
            for problem in errors:
                error_line(f"error: {problem}")
            if strict:
                for problem in warnings:
                    error_line(f"error: {problem} (a warning; --strict)")
            bold = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
            for job in loaded.jobs:
                summary = _job_summary(job)
                mine = [p for p in problems if p.job_id in (job.id, None)]
                n_err = sum(p.severity == "error" for p in mine)
                typer.echo(  # plain text: rich would cost a third of the command's time
                    f"{bold[0]}{job.id}{bold[1]}  {_plural(summary['tasks'], 'task')}  "
                    f"{summary['levels']:,} "
                    f"level{'s' if summary['levels'] != 1 else ''}  "
                    f"{n_err} error{'s' if n_err != 1 else ''}  "
                    f"{len(mine) - n_err} warning{'s' if len(mine) - n_err != 1 else ''}"
                )
            if not strict:
                print_warnings(warnings)
        if failed:
            raise typer.Exit(EXIT_BAD_INPUT)


@contextlib.contextmanager
def _stored_jobs(state_dir: Path | None) -> Iterator[Callable[[str], JobTasks | None]]:
    """`existing` for `Flow.validate`: the jobs where submit would put the flow, asked of
    the backend only if a dependency names a task outside the flow."""
    opened: list[Backend] = []

    def existing(job_id: str) -> JobTasks | None:
        from batchflow.backends.base import stored_tasks
        from batchflow.cli.target import backend

        if not opened:
            opened.append(backend(state_dir))
        return stored_tasks(opened[0], job_id)

    try:
        yield existing
    finally:
        for each in opened:
            each.close()


def print_warnings(warnings: list[Problem], *, stderr: bool = False) -> None:
    """Warnings as lines, `warning: file:line: job 'j' task 't' field: message`: readable
    at any width, and the same shape as errors."""
    from batchflow.redact import redact

    for problem in warnings:
        typer.echo(f"warning: {redact(str(problem))}", err=stderr)


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
        loaded.check(inputs=False)
        chosen = loaded.jobs if job is None else [loaded.job(job)]
        typer.echo(
            "".join(render(Graph.of(j), format.value, collapse=collapse) for j in chosen), nl=False
        )


def export(
    flow: FlowArg,
    tasks_only: Annotated[
        bool,
        typer.Option(
            "--tasks-only",
            help="Only the task array: the body for `az batch task create --json-file`.",
        ),
    ] = False,
    job_only: Annotated[
        bool,
        typer.Option(
            "--job-only",
            help="Only the job: the body for `az batch job create --json-file` "
            "(onAllTasksComplete noaction until the tasks are in; needs a pool).",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write to this file (folders are created) instead of stdout."
        ),
    ] = None,
    job: JobOpt = None,
    job_id: JobIdOpt = None,
    pool_id: PoolIdOpt = None,
) -> None:
    """Write a flow as JSON: batchflow's job document, or the pair `az batch` takes.

    Without options: the job with its tasks in one document (validate and submit read it
    back; no Batch request takes it whole).

    For Azure Batch, export twice and create in this order: `--job-only -o job.json`
    (`az batch job create --json-file job.json`), then `--tasks-only -o tasks.json`
    (`az batch task create --job-id JOB --json-file tasks.json`), then set the job's
    onAllTasksComplete (the command is printed).
    """
    with failures():
        from batchflow.exceptions import FlowLoadError
        from batchflow.export import deferred_on_all_tasks_complete, job_add_body, write_job

        if tasks_only and job_only:
            raise FlowLoadError(
                "--tasks-only and --job-only exclude each other", field="--tasks-only"
            )
        loaded = _load(flow, job_id, pool_id)
        loaded.check(inputs=False)
        chosen = loaded.job(job)
        if job_only:
            job_add_body(chosen)  # refuses a job Batch could not create, before writing
        staged = sum(1 for t in chosen.tasks if t.inputs or t.outputs or t.handoffs)
        if staged and not job_only:
            error_line(
                f"note: {staged:,} task(s) use inputs=/outputs=, which batchflow stages when it "
                "submits; the exported JSON does not carry them"
            )
        if out is None:
            write_job(chosen, sys.stdout, tasks_only=tasks_only, with_tasks=not job_only)
        else:
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                with open(out, "w", encoding="utf-8") as stream:
                    write_job(chosen, stream, tasks_only=tasks_only, with_tasks=not job_only)
            except OSError as exc:
                raise FlowLoadError(
                    f"cannot write: {exc.strerror}", file=str(out), field="--out"
                ) from None
        if job_only:
            deferred = deferred_on_all_tasks_complete(chosen)
            name = out.name if out is not None else "job.json"
            steps = [
                f"az batch job create --json-file {name}",
                f"az batch task create --job-id {chosen.id} --json-file tasks.json"
                f"    # batchflow export {flow} --tasks-only -o tasks.json",
            ]
            if deferred:
                steps.append(
                    f"az batch job set --job-id {chosen.id} --on-all-tasks-complete {deferred}"
                )
            why = (
                f" (onAllTasksComplete is noaction here: a job that says {deferred} completes "
                "at once while it has no tasks; set it once the tasks are in)"
                if deferred
                else ""
            )
            error_line(f"note: create the job, then its tasks{why}:")
            for step in steps:
                error_line(f"  {step}")
            here = f"batchflow submit {name}; batchflow submit tasks.json --job-id {chosen.id}"
            if deferred:
                here += f"; batchflow update {chosen.id} --on-all-tasks-complete {deferred}"
            error_line(f"  (here, with the local engine: {here})")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the application."""
    app.command()(validate)
    app.command()(graph)
    app.command()(export)
