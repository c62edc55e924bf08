"""Monitoring and control of submitted jobs: jobs, status, tasks, logs, files, download,
terminate, delete. The tutorial's steps 7 to 10 (`az batch job show`, `task list`,
`task file download`, `job stop/delete`) in shorter commands, each with `--output json`.
"""

from __future__ import annotations

import enum
import sys
import time
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from batchflow.cli.flow import OutputOpt
from batchflow.cli.output import (
    EXIT_BAD_INPUT,
    OutputFormat,
    bar,
    colour,
    console,
    error_line,
    failures,
    print_json,
    styled,
)
from batchflow.cli.run import StateDirOpt, job_result
from batchflow.cli.target import backend as backend_for

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


def jobs(state_dir: StateDirOpt = None, output: OutputOpt = OutputFormat.text) -> None:
    """List the jobs, newest first (of the state directory, or of the target's account)."""
    with failures():
        backend = backend_for(state_dir)
        found = backend.jobs()
        if output is OutputFormat.json:
            print_json([job_result(backend, s) for s in found])
            return
        if not found:
            typer.echo("no jobs (submit one with `batchflow submit FLOW`)")
            return
        header = ("job", "state", "tasks", "active", "running", "succeeded", "failed", "created")
        rows = []
        for s in found:
            c = s.counts
            state = s.state + (f" ({s.terminate_reason})" if s.terminate_reason else "")
            counts = (c.total, c.active, c.running, c.succeeded, c.failed)
            rows.append((s.id, state, *(f"{n:,}" for n in counts), _when(s.creation_time)))
        _print_table(header, rows, right=range(2, 7))


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
        backend = backend_for(state_dir)
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
        stalled = _stalled(backend, s)
        if output is OutputFormat.json:
            result = job_result(backend, s)
            if stalled is not None:
                result["stalled"] = stalled
            print_json(result)
        else:
            c = s.counts
            on = colour()
            state = s.state + (f" ({s.terminate_reason})" if s.terminate_reason else "")
            lines = [
                f"{styled(s.id, 'bold', on=on)}  {state}  {s.backend} pool '{s.pool_id}'",
                f"{bar(c.completed, c.total, failed=bool(c.failed), on=on)}  "
                f"{c.completed:,}/{c.total:,}  {100 * c.completed / (c.total or 1):.0f}%",
                f"active {c.active:,}  running {c.running:,}  completed {c.completed:,} "
                f"(succeeded {c.succeeded:,}, failed {c.failed:,})",
                f"created {_when(s.creation_time)}"
                + (f"  ended {_when(s.end_time)}" if s.end_time else ""),
            ]
            if s.wire:
                lines.append(_settings(s.wire))
            if s.outputs_location:
                lines.append(f"results: {s.outputs_location}")
            from batchflow.redact import redact

            typer.echo(redact("\n".join(lines)))
            if stalled is not None:
                error_line(f"warning: {stalled}")
        raise typer.Exit(1 if s.counts.failed else 0)


def _stalled(backend: Any, s: Any) -> str | None:
    """Why a job with work left does not move (no engine runs it), and how to resume."""
    running = getattr(backend, "engine_running", None)
    if running is None or s.state not in ("active", "terminating", "deleting", "disabling"):
        return None
    if not (s.counts.running or (s.counts.active and not s.settled)) or running():
        return None
    why = getattr(backend, "engine_log_tail", lambda: None)()
    return (
        "no engine is running, so nothing of this job moves"
        + (f" (the last one stopped: {why})" if why else "")
        + f"; `batchflow status {s.id} --watch` starts one, which requeues the tasks left "
        "running and carries on"
    )


def _settings(wire: dict[str, Any]) -> str:
    """The job's mutable settings, one line (what `batchflow update` changes)."""
    from batchflow.durations import INFINITE

    wall = (wire.get("constraints") or {}).get("maxWallClockTime")
    parallel = wire.get("maxParallelTasks", -1)
    return (
        f"priority {wire.get('priority', 0)}  "
        f"onAllTasksComplete {wire.get('onAllTasksComplete', 'noaction')}  "
        f"wall clock {'unlimited' if wall in (None, INFINITE) else wall}  "
        f"max parallel tasks {'unlimited' if parallel == -1 else parallel}  "
        f"task retries {(wire.get('constraints') or {}).get('maxTaskRetryCount', 0)}"
    )


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
        import json

        from batchflow.cli.progress import describe_failure

        backend = backend_for(state_dir)
        wanted: Any = state.value if state else None
        result: Any = None
        if state in (StateFilter.failed, StateFilter.succeeded):
            wanted, result = "completed", ("failure" if state is StateFilter.failed else "success")
        rows = 0
        widths: tuple[int, ...] = (0,)
        continuation: str | None = None
        first = True
        while True:
            page, continuation = backend.list_tasks(
                job, state=wanted, result=result, continuation=continuation
            )
            if output is OutputFormat.json:
                # One task per line: the C encoder (indent= would use the Python one)
                text = ",\n".join(json.dumps(t.wire) for t in page)
                sys.stdout.write(("[\n" if first else ",\n" if page and rows else "") + text)
            else:
                lines = [_task_row(t, describe_failure) for t in page]
                if first:
                    header = (
                        "task",
                        "state",
                        "exit",
                        "retries",
                        "requeues",
                        "node",
                        "took",
                        "failure",
                    )
                    widths = tuple(
                        max([len(h), *(len(line[i]) for line in lines)])
                        for i, h in enumerate(header)
                    )
                    if lines:
                        _print_row(header, widths, bold=True)
                for line in lines:
                    _print_row(line, widths)
            rows += len(page)
            first = False
            if continuation is None:
                break
        if output is OutputFormat.json:
            sys.stdout.write("\n]\n" if rows else "[]\n")
        elif not rows:
            console().print(f"no {state.value + ' ' if state else ''}tasks in job '{job}'")


def _task_row(t: TaskInfo, describe: Any) -> tuple[str, ...]:
    from batchflow.redact import redact

    took = ""
    if t.start_time and t.end_time:
        took = f"{(t.end_time - t.start_time).total_seconds():.2f}s"
    return (
        t.id,
        t.state + (f" ({t.result})" if t.result else ""),
        "" if t.exit_code is None else str(t.exit_code),
        str(t.retry_count),
        str(t.requeue_count),
        t.node_id or "",
        took,
        redact(describe(t)) if t.result == "failure" else "",
    )


def _print_table(
    header: tuple[str, ...], rows: Sequence[tuple[str, ...]], *, right: Collection[int] = ()
) -> None:
    """A plain table: the header in bold on a terminal, columns as wide as their widest
    cell, those in `right` aligned to the right."""
    columns = zip(header, *rows, strict=True)
    widths = tuple(max(len(cell) for cell in column) for column in columns)
    _print_row(header, widths, bold=True, right=right)
    for row in rows:
        _print_row(row, widths, right=right)


def _print_row(
    cells: tuple[str, ...],
    widths: tuple[int, ...],
    *,
    bold: bool = False,
    right: Collection[int] = (),
) -> None:
    """One row of a plain table: cells padded to `widths` (those in `right` to the right),
    two spaces apart; the header in bold on a terminal."""
    line = "  ".join(
        c.rjust(w) if i in right else c.ljust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=False))
    ).rstrip()
    sys.stdout.write(styled(line, "bold", on=bold and colour()) + "\n")


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
        backend = backend_for(state_dir)
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
        backend = backend_for(state_dir)
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
        rows = [
            (
                f.name + ("/" if f.is_directory else ""),
                "" if f.is_directory else f"{f.size:,}",
                _when(f.last_modified),
            )
            for f in found
        ]
        _print_table(("name", "size", "modified"), rows, right=(1,))


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

        backend = backend_for(state_dir)
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
        backend = backend_for(state_dir)
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
        backend = backend_for(state_dir)
        backend.enable(job)
        _wait(lambda: backend.job_status(job).state not in ("disabled", "disabling", "enabling"))
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

        backend = backend_for(state_dir)
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


def reactivate(
    job: JobArg,
    task_ids: Annotated[
        list[str] | None, typer.Argument(help="Failed tasks to run again.", show_default=False)
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Every failed task of the job.")] = False,
    state_dir: StateDirOpt = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Run failed tasks again, their retry count reset (`az batch task reactivate`).

    After a fix (a script, an input), `batchflow reactivate JOB --failed` and then
    `batchflow submit FLOW` (or `status`) follows the new outcome.
    """
    with failures():
        from batchflow.exceptions import BackendError

        if bool(task_ids) == failed:
            raise BackendError(
                "name the tasks to reactivate, or pass --failed for every failed task"
            )
        backend = backend_for(state_dir)
        from batchflow.backends.base import each_task

        names = list(task_ids or [])
        if failed:
            names += [t.id for t in each_task(backend, job, state="completed", result="failure")]
        for name in names:
            backend.reactivate_task(job, name)
        if output is OutputFormat.json:
            print_json({"job": job, "reactivated": names})
        elif names:
            console().print(
                f"{job}  {len(names):,} task{'s' if len(names) != 1 else ''} reactivated",
                markup=False,
            )
        else:
            console().print(f"{job}  no failed tasks", markup=False)


def terminate_task(
    job: JobArg,
    task: TaskArg,
    state_dir: StateDirOpt = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """End one task: killed if it runs, completed if it waits (`az batch task stop`)."""
    with failures():
        backend = backend_for(state_dir)
        backend.terminate_task(job, task)
        info = backend.task(job, task)
        if output is OutputFormat.json:
            print_json(info.wire)
        else:
            console().print(f"{job} {info.id}  {info.state}", markup=False)


class DisableTasks(enum.StrEnum):
    """`disable --tasks`: what happens to the job's running tasks."""

    requeue = "requeue"
    terminate = "terminate"
    wait = "wait"


def disable(
    job: JobArg,
    tasks_mode: Annotated[
        DisableTasks,
        typer.Option("--tasks", help="Running tasks: requeue, terminate or wait."),
    ] = DisableTasks.requeue,
    state_dir: StateDirOpt = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Stop starting a job's tasks until `batchflow enable` (`az batch job disable`)."""
    with failures():
        backend = backend_for(state_dir)
        backend.disable(job, tasks_mode.value)
        _wait(lambda: backend.job_status(job).state != "disabling")
        s = backend.job_status(job)
        if output is OutputFormat.json:
            print_json(job_result(backend, s))
        else:
            console().print(f"{s.id}  {s.state}", markup=False)


def update(
    job: JobArg,
    priority: Annotated[
        int | None, typer.Option("--priority", min=-1000, max=1000, help="-1000..1000.")
    ] = None,
    on_all_tasks_complete: Annotated[
        str | None,
        typer.Option("--on-all-tasks-complete", help="noaction or terminatejob."),
    ] = None,
    wall_clock: Annotated[
        str | None,
        typer.Option("--max-wall-clock-time", help="The job's wall clock (PT24H, 2h, ...)."),
    ] = None,
    max_parallel: Annotated[
        int | None, typer.Option("--max-parallel-tasks", help="-1 (unlimited) or more than 0.")
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option("--max-task-retry-count", min=-1, help="Default retries of its tasks."),
    ] = None,
    state_dir: StateDirOpt = None,
    output: OutputOpt = OutputFormat.text,
) -> None:
    """Change a job's mutable properties (`az batch job set`); `status` shows them."""
    with failures():
        from batchflow.durations import to_wire_duration
        from batchflow.exceptions import BackendError

        backend = backend_for(state_dir)
        changes: dict[str, Any] = {}
        if priority is not None:
            changes["priority"] = priority
        if on_all_tasks_complete is not None:
            value = on_all_tasks_complete.lower()
            if value not in ("noaction", "terminatejob"):
                raise BackendError(
                    f"--on-all-tasks-complete must be noaction or terminatejob, not "
                    f"'{on_all_tasks_complete}'"
                )
            changes["onAllTasksComplete"] = value
        if max_parallel is not None:
            if max_parallel == 0 or max_parallel < -1:
                raise BackendError(
                    f"--max-parallel-tasks must be -1 or more than 0, not {max_parallel}"
                )
            changes["maxParallelTasks"] = max_parallel
        if wall_clock is not None or retries is not None:
            constraints = dict(backend.job_status(job).wire.get("constraints") or {})
            if wall_clock is not None:
                try:
                    constraints["maxWallClockTime"] = to_wire_duration(wall_clock)
                except ValueError as exc:
                    raise BackendError(f"--max-wall-clock-time: {exc}") from None
            if retries is not None:
                constraints["maxTaskRetryCount"] = retries
            changes["constraints"] = constraints
        if not changes:
            raise BackendError("nothing to change: pass at least one option (see --help)")
        backend.update_job(job, changes)
        s = backend.job_status(job)
        if output is OutputFormat.json:
            print_json(job_result(backend, s))
        else:
            console().print(f"{s.id}  {_settings(s.wire)}", markup=False)


def _wait(condition: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def register(app: typer.Typer) -> None:
    """Add this group's commands to the application."""
    commands: list[Any] = [jobs, status, tasks, logs, files, download, terminate, enable]
    for command in [*commands, delete, reactivate, disable, update]:
        app.command()(command)
    app.command("terminate-task")(terminate_task)
