"""`batchflow submit`: run a flow here with Azure Batch semantics and watch it.

Exit codes: 0 when every task succeeded, 1 when any task failed (or could not run
because a dependency failed), 2 for bad input (the flow, a missing `inputs=` file, a
changed task without `--replace`), 130 when interrupted (the job keeps running).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from batchflow.cli.flow import (
    FlowArg,
    JobIdOpt,
    JobOpt,
    OutputOpt,
    PoolIdOpt,
    StateDirOpt,
    StrictOpt,
    print_warnings,
)
from batchflow.cli.output import (
    EXIT_FAILED,
    EXIT_OK,
    OutputFormat,
    console,
    error_line,
    failures,
    print_json,
)
from batchflow.cli.target import backend as backend_for

if TYPE_CHECKING:
    from batchflow.backends.base import Backend, JobStatus

__all__ = ["StateDirOpt", "job_result", "register", "submit"]


def job_result(backend: Backend, status: JobStatus) -> dict[str, Any]:
    """The JSON shape of a job's outcome: state, counts and the failed tasks."""
    failed: list[dict[str, Any]] = []
    failed_since = getattr(backend, "failed_since", None)
    if failed_since is not None and status.counts.failed:
        tasks, _ = failed_since(status.id, 0)
        for task in tasks:
            info = task.failure_info
            failed.append(
                {
                    "id": task.id,
                    "exitCode": task.exit_code,
                    "retryCount": task.retry_count,
                    "failureInfo": (
                        {"category": info.category, "code": info.code, "message": info.message}
                        if info
                        else None
                    ),
                }
            )
    counts = status.counts
    return {
        "id": status.id,
        "state": status.state,
        "terminateReason": status.terminate_reason,
        "counts": {
            "active": counts.active,
            "running": counts.running,
            "completed": counts.completed,
            "succeeded": counts.succeeded,
            "failed": counts.failed,
        },
        "succeeded": counts.succeeded == counts.total,
        "results": status.outputs_location,
        "failed": failed,
        "creationTime": (status.wire or {}).get("creationTime"),
        "job": status.wire or None,
    }


def _summary(status: JobStatus) -> str:
    counts = status.counts
    state = status.state + (f" ({status.terminate_reason})" if status.terminate_reason else "")
    parts = [f"{counts.succeeded:,} succeeded"]
    if counts.failed:
        parts.append(f"{counts.failed:,} failed")
    waiting = counts.active + counts.running
    if waiting:
        why = "blocked by failed dependencies" if status.state == "active" else "never ran"
        parts.append(f"{waiting:,} {why}")
    total = counts.total
    return f"{status.id}  {state}  {total:,} task{'s' if total != 1 else ''}: " + ", ".join(parts)


def submit(
    flow: FlowArg,
    job: JobOpt = None,
    job_id: JobIdOpt = None,
    pool_id: PoolIdOpt = None,
    slots: Annotated[
        int | None,
        typer.Option("--slots", min=1, help="Task slots per node (default: number of CPUs)."),
    ] = None,
    nodes: Annotated[
        int | None,
        typer.Option("--nodes", min=1, help="Emulated nodes, each with its own directories."),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Rerun tasks whose definition changed since last time."),
    ] = False,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Return at once; the job runs on.")
    ] = False,
    strict: StrictOpt = False,
    state_dir: StateDirOpt = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Run a flow here with Azure Batch semantics, or on Azure Batch (--stack), and watch it.

    Submitting a job that exists attaches to it: finished tasks are kept, new ones are
    added. Exit code 0 when every task succeeded, 1 when any failed, 2 for bad input.
    """
    with failures():
        backend = backend_for(state_dir, slots=slots, nodes=nodes)
        # The engine starts while the flow loads; it runs nothing until the job is stored.
        getattr(backend, "start_early", lambda: None)()
        try:
            from batchflow.backends.base import stored_tasks
            from batchflow.cli.progress import watch
            from batchflow.loader import load

            loaded = load(flow, job_id=job_id, pool_id=pool_id)
            # A dependency outside the flow may name a task the job already has.
            warnings = loaded.check(
                strict=strict, existing=lambda job_id: stored_tasks(backend, job_id)
            )
            # The flow's warnings (folded as validate folds them), before anything runs.
            print_warnings(warnings, stderr=True)
            jobs = loaded.jobs if job is None else [loaded.job(job)]
            as_json = output is OutputFormat.json
            # JSON (a pipeline) prints no rich text: rich is not even imported then.
            out: Any = None if as_json else console()
            live = out is not None and out.is_terminal
            with _upload_progress(backend, live=live):
                submitted = [backend.submit(j, replace=replace) for j in jobs]
            ids = [s.job_id for s in submitted]
            stager = getattr(backend, "_stager", None)
            if stager is not None and (stager.uploaded or stager.present) and not as_json:
                files = stager.uploaded + stager.present
                out.print(
                    f"staged {files:,} input file{'s' if files != 1 else ''} "
                    f"({stager.uploaded:,} uploaded, {stager.present:,} already there)",
                    markup=False,
                )
            if not as_json:
                for result in submitted:
                    note = f"{result.added:,} task{'s' if result.added != 1 else ''} added"
                    if result.unchanged:
                        note += f", {result.unchanged:,} already there"
                    if result.replaced:
                        note += f", {result.replaced:,} replaced"
                    where = getattr(backend, "describe", lambda: "")()
                    out.print(
                        f"[bold]{result.job_id}[/]  {backend.name}  "
                        + (f"{where}  " if where else "")
                        + note,
                        highlight=False,
                    )
            if all(not len(j) and j.tasks_follow for j in jobs):
                # A Job-Add body (export --job-only): the tasks come in a second file.
                if as_json:
                    print_json({"jobs": [{"id": s.job_id, "added": 0} for s in submitted]})
                else:
                    out.print(
                        f"job created with no tasks; add them with `batchflow submit "
                        f"TASKS.json --job-id {ids[0]}`",
                        markup=False,
                    )
                raise typer.Exit(EXIT_OK)
            if detach:
                if as_json:
                    print_json({"jobs": [{"id": s.job_id, "added": s.added} for s in submitted]})
                else:
                    out.print(
                        f"running in the background; follow with `batchflow status {ids[0]} "
                        "--watch`"
                    )
                raise typer.Exit(EXIT_OK)
            try:
                final = watch(
                    backend,
                    ids,
                    live=live,
                    on_failure=(lambda line: None) if as_json else error_line,
                )
            except KeyboardInterrupt:
                error_line(
                    f"stopped watching; the job keeps running (`batchflow status {ids[0]}`, "
                    f"`batchflow terminate {ids[0]}`)"
                )
                raise typer.Exit(130) from None
            ok = all(s.counts.succeeded == s.counts.total for s in final)
            if as_json:
                print_json({"succeeded": ok, "jobs": [job_result(backend, s) for s in final]})
            else:
                for status in final:
                    out.print(_summary(status), markup=False)
                    if status.outputs_location:
                        out.print(f"results: {status.outputs_location}", markup=False)
            raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)
        finally:
            backend.close()


@contextlib.contextmanager
def _upload_progress(backend: Backend, *, live: bool) -> Iterator[None]:
    """A progress bar for the inputs a backend uploads (Azure), on a terminal."""
    if not live or not hasattr(backend, "on_upload"):
        yield
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    with Progress(
        TextColumn("staging inputs"), BarColumn(), DownloadColumn(), transient=True
    ) as bar:
        task = bar.add_task("inputs", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        backend.on_upload = update
        try:
            yield
        finally:
            backend.on_upload = None


def register(app: typer.Typer) -> None:
    """Add this group's commands to the application."""
    app.command()(submit)
