"""Monitoring and control of submitted jobs: jobs, status, tasks, logs, files, download,
terminate, delete. The tutorial's steps 7 to 10 (`az batch job show`, `task list`,
`task file download`, `job stop/delete`) in shorter commands, each with `--output json`.
"""

from __future__ import annotations

import enum
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from batchflow.cli.flow import OutputOpt
from batchflow.cli.output import (
    EXIT_BAD_INPUT,
    OutputFormat,
    console,
    error_line,
    failures,
    print_json,
)
from batchflow.cli.run import StateDirOpt, job_result, local_backend

if TYPE_CHECKING:
    from batchflow.backends.base import TaskInfo

__all__ = ["register"]

JobArg = Annotated[str, typer.Argument(help="The job id.", show_default=False)]
TaskArg = Annotated[str, typer.Argument(help="The task id.", show_default=False)]


class StateFilter(enum.StrEnum):
    """`tasks --state`: Batch's task states, plus succeeded/failed (completed by result)."""

    active = "active"
    preparing = "preparing"
    running = "running"
    completed = "completed"
    succeeded = "succeeded"
    failed = "failed"


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _task_json(task: TaskInfo) -> dict[str, Any]:
    info = task.failure_info
    return {
        "id": task.id,
        "state": task.state,
        "previousState": task.previous_state,
        "stateTransitionTime": _iso(task.state_transition_time),
        "commandLine": task.command_line,
        "executionInfo": {
            "startTime": _iso(task.start_time),
            "endTime": _iso(task.end_time),
            "exitCode": task.exit_code,
            "result": task.result,
            "failureInfo": (
                {"category": info.category, "code": info.code, "message": info.message}
                if info
                else None
            ),
            "retryCount": task.retry_count,
            "requeueCount": task.requeue_count,
        },
        "nodeInfo": {"nodeId": task.node_id, "taskRootDirectory": task.task_dir},
    }


def jobs(state_dir: StateDirOpt = None, output: OutputOpt = OutputFormat.text) -> None:
    """List the jobs in the state directory, newest first."""
    with failures():
        backend = local_backend(state_dir)
        found = backend.jobs()
        if output is OutputFormat.json:
            print_json([job_result(backend, s) for s in found])
            return
        if not found:
            console().print("no jobs (submit one with `batchflow submit FLOW`)")
            return
        from rich.table import Table

        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("job", "state", "tasks", "active", "running", "succeeded", "failed"):
            table.add_column(column, justify="left" if column in ("job", "state") else "right")
        table.add_column("created")
        for s in found:
            c = s.counts
            state = s.state + (f" ({s.terminate_reason})" if s.terminate_reason else "")
            table.add_row(
                s.id,
                state,
                f"{c.total:,}",
                f"{c.active:,}",
                f"{c.running:,}",
                f"{c.succeeded:,}",
                f"{c.failed:,}",
                _when(s.creation_time),
            )
        console().print(table)


def status(
    job: JobArg,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            "-w",
            help="Follow the job (live progress, failures as they happen) until it ends.",
        ),
    ] = False,
    state_dir: StateDirOpt = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """A job's state, task counts and progress (never a full task listing).

    Exit code 0 if every task succeeded so far, 1 if any failed.
    """
    with failures():
        backend = local_backend(state_dir)
        s = backend.job_status(job)
        if watch:
            from batchflow.cli.progress import watch as follow

            as_json = output is OutputFormat.json
            try:
                [s] = follow(
                    backend,
                    [s.id],
                    live=not as_json and console().is_terminal,
                    on_failure=(lambda line: None) if as_json else error_line,
                )
            except KeyboardInterrupt:
                error_line("stopped watching; the job keeps running")
                raise typer.Exit(130) from None
        if output is OutputFormat.json:
            print_json(job_result(backend, s))
        else:
            from rich.progress_bar import ProgressBar
            from rich.table import Table

            c = s.counts
            out = console()
            state = s.state + (f" ({s.terminate_reason})" if s.terminate_reason else "")
            out.print(f"[bold]{s.id}[/]  {state}  local pool '{s.pool_id}'")
            grid = Table.grid(padding=(0, 2))
            grid.add_row(
                ProgressBar(
                    total=c.total or 1,
                    completed=c.completed,
                    width=40,
                    complete_style="red" if c.failed else "cyan",
                    finished_style="red" if c.failed else "green",
                ),
                f"{c.completed:,}/{c.total:,}",
                f"{100 * c.completed / (c.total or 1):.0f}%",
            )
            out.print(grid)
            out.print(
                f"active {c.active:,}  running {c.running:,}  completed {c.completed:,} "
                f"(succeeded {c.succeeded:,}, failed {c.failed:,})"
            )
            ended = f"  ended {_when(s.end_time)}" if s.end_time else ""
            out.print(f"created {_when(s.creation_time)}{ended}")
            if s.outputs_location:
                out.print(f"results: {s.outputs_location}", markup=False)
        raise typer.Exit(1 if s.counts.failed else 0)


def tasks(
    job: JobArg,
    state: Annotated[
        StateFilter | None, typer.Option("--state", "-s", help="Only tasks in this state.")
    ] = None,
    state_dir: StateDirOpt = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """List a job's tasks with their state, exit code, retries and failure."""
    with failures():
        from batchflow.cli.progress import describe_failure

        backend = local_backend(state_dir)
        if state in (StateFilter.failed, StateFilter.succeeded):
            wanted = "failure" if state is StateFilter.failed else "success"
            found = [t for t in backend.tasks(job, "completed") if t.result == wanted]
        else:
            found = backend.tasks(job, state.value if state else None)  # type: ignore[arg-type]
        if output is OutputFormat.json:
            print_json([_task_json(t) for t in found])
            return
        if not found:
            console().print(f"no {state.value + ' ' if state else ''}tasks in job '{job}'")
            return
        from rich.table import Table

        from batchflow.redact import redact

        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("task", "state", "exit", "retries", "requeues", "node", "took", "failure"):
            table.add_column(column, overflow="fold")
        for t in found:
            took = ""
            if t.start_time and t.end_time:
                took = f"{(t.end_time - t.start_time).total_seconds():.2f}s"
            table.add_row(
                t.id,
                t.state + (f" ({t.result})" if t.result else ""),
                "" if t.exit_code is None else str(t.exit_code),
                str(t.retry_count),
                str(t.requeue_count),
                t.node_id or "",
                took,
                redact(describe_failure(t)) if t.result == "failure" else "",
            )
        console().print(table)


def logs(
    job: JobArg,
    task: TaskArg,
    stderr: Annotated[bool, typer.Option("--stderr", "-e", help="stderr.txt instead.")] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the task ends.")
    ] = False,
    state_dir: StateDirOpt = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Print a task's stdout.txt (or stderr.txt), as `az batch task file download` would."""
    with failures():
        backend = local_backend(state_dir)
        name = "stderr.txt" if stderr else "stdout.txt"
        if output is OutputFormat.json:
            data = backend.read_file(job, task, name)
            print_json(
                {"job": job, "task": task, "file": name, "content": data.decode(errors="replace")}
            )
            return
        offset = 0
        while True:
            try:
                data = backend.read_file(job, task, name, offset=offset)
            except Exception:
                if not follow:
                    raise
                data = b""
            if data:
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
                offset += len(data)
            current = backend.task(job, task) if follow else None
            if current is not None and current.state == "active":
                job_now = backend.job_status(job)
                # Settled: nothing runs and nothing can start (a disabled job may resume).
                if (job_now.settled and job_now.state == "active") or job_now.state == "completed":
                    why = (
                        f"job '{job_now.id}' is {job_now.state}"
                        if job_now.state == "completed"
                        else "it waits for a dependency that failed (as on Batch, it stays "
                        f"active); see `batchflow tasks {job_now.id} --state failed`"
                    )
                    error_line(f"error: task '{task}' will never start: {why}")
                    raise typer.Exit(1)
            if not follow or (current is not None and current.state == "completed"):
                if follow:  # whatever was written between the read and the check
                    rest = backend.read_file(job, task, name, offset=offset)
                    sys.stdout.buffer.write(rest)
                    sys.stdout.flush()
                return
            time.sleep(0.2)


def files(
    job: JobArg, task: TaskArg, state_dir: StateDirOpt = None, output: OutputOpt = OutputFormat.text
) -> None:
    """List a task's files (stdout.txt, stderr.txt, wd/...), relative to its directory."""
    with failures():
        backend = local_backend(state_dir)
        found = backend.files(job, task)
        if output is OutputFormat.json:
            print_json(
                [
                    {
                        "name": f.name,
                        "isDirectory": f.is_directory,
                        "contentLength": f.size,
                        "lastModified": _iso(f.last_modified),
                    }
                    for f in found
                ]
            )
            return
        from rich.table import Table

        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("name")
        table.add_column("size", justify="right")
        table.add_column("modified")
        for f in found:
            table.add_row(
                f.name + ("/" if f.is_directory else ""),
                "" if f.is_directory else f"{f.size:,}",
                _when(f.last_modified),
            )
        console().print(table)


def download(
    job: JobArg,
    task: TaskArg,
    path: Annotated[str, typer.Argument(help="File path in the task directory, e.g. wd/out.csv.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Where to write (default: its file name).")
    ] = None,
    state_dir: StateDirOpt = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Copy one file of a task to this folder (or to --out)."""
    with failures():
        from batchflow.exceptions import BackendError

        backend = local_backend(state_dir)
        try:
            data = backend.read_file(job, task, path)
        except BackendError as exc:
            # Files a task writes are under wd/ (its working directory), logs are not.
            if not path.startswith(("wd/", "/")) and any(
                f.name == f"wd/{path}" for f in backend.files(job, task)
            ):
                raise BackendError(f"{exc} (did you mean 'wd/{path}'?)") from None
            raise
        target = out if out is not None else Path(Path(path).name)
        if target.is_dir():
            target = target / Path(path).name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        except OSError as exc:
            raise BackendError(f"cannot write '{target}': {exc.strerror}") from None
        if output is OutputFormat.json:
            print_json(
                {"job": job, "task": task, "path": path, "saved": str(target), "size": len(data)}
            )
        else:
            console().print(f"saved {target} ({len(data):,} bytes)", markup=False)


def terminate(
    job: JobArg,
    reason: Annotated[
        str, typer.Option("--reason", help="terminateReason recorded on the job.")
    ] = "UserTerminate",
    state_dir: StateDirOpt = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """End a job: running tasks are killed, tasks not started stay active and never run."""
    with failures():
        backend = local_backend(state_dir)
        backend.terminate(job, reason)
        _wait(lambda: backend.job_status(job).state == "completed")
        s = backend.job_status(job)
        if output is OutputFormat.json:
            print_json(job_result(backend, s))
        else:
            # The words `status` uses: the job's state and its terminateReason.
            console().print(f"{s.id}  {s.state} ({s.terminate_reason or reason})", markup=False)


def enable(
    job: JobArg,
    state_dir: StateDirOpt = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Enable a job that a task's jobAction disabled: its tasks are scheduled again."""
    with failures():
        backend = local_backend(state_dir)
        backend.enable(job)
        _wait(lambda: backend.job_status(job).state != "disabled")
        s = backend.job_status(job)
        if output is OutputFormat.json:
            print_json(job_result(backend, s))
        else:
            console().print(f"{s.id}  enabled ({s.state})", markup=False)


def delete(
    job: JobArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    state_dir: StateDirOpt = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Delete a job: kill its tasks, remove it, its tasks and their task directories.

    The results folder (outputs=) is kept.
    """
    with failures():
        from batchflow.exceptions import BackendError

        backend = local_backend(state_dir)
        s = backend.job_status(job)
        if not yes:
            if not sys.stdin.isatty():
                error_line(f"error: deleting job '{s.id}' needs confirmation; pass --yes")
                raise typer.Exit(EXIT_BAD_INPUT)
            try:
                sure = typer.confirm(
                    f"delete job '{s.id}' and its {s.counts.total:,} tasks?", default=False
                )
            except typer.Abort:  # Ctrl-D (end of input) is no answer: nothing is deleted
                typer.echo("", err=True)
                sure = False
            if not sure:
                console().print(f"{s.id}  kept (nothing deleted)", markup=False)
                raise typer.Exit(0)
        backend.delete(job)

        def gone() -> bool:
            try:
                backend.job_status(job)
            except BackendError:
                return True
            return False

        done = _wait(gone)
        if output is OutputFormat.json:
            print_json({"id": s.id, "deleted": done})
        else:
            console().print(f"{s.id}  {'deleted' if done else 'deleting'}", markup=False)


def _wait(condition: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def register(app: typer.Typer) -> None:
    """Add this group's commands to the application."""
    for command in (jobs, status, tasks, logs, files, download, terminate, enable, delete):
        app.command()(command)
