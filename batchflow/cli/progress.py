"""Watching jobs run: a live progress view for people, plain lines when output is piped.

The view refreshes a few times a second from `job_status` (one row per job, however many
tasks) and shows each failure once, as it happens, from `failed_since`. A backend with a
`poll` attribute (Azure: `(1.0, 15.0)`) is polled with back-off instead: from the first
interval, growing by half while nothing changes, up to the second. Refreshing is a
display concern only: the engine never waits on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from batchflow.redact import redact

if TYPE_CHECKING:
    from batchflow.backends.base import Backend, JobStatus, TaskInfo

__all__ = ["describe_failure", "failure_line", "watch"]

_REFRESH = 0.1
_CHECK_ENGINE = 1.0
#: Poll interval once every job has at most `_FEW` tasks left to finish (the counts a
#: CLI reads lag the engine by up to 50 ms: many short tasks end in that time).
_REFRESH_NEAR_END = 0.01
_FEW = 200
_QUIET_POLLS = 50


def describe_failure(task: TaskInfo) -> str:
    """`exit 1 after 3 attempts` / `CommandProgramNotFound: ...` for a failed task.

    Requeues (a node lost or preempted under the task: not its fault, and not counted
    against its retries, as on Batch) are told apart: `exit 1 after 2 attempts, requeued
    once (node lost or preempted)`."""
    attempts = task.retry_count + 1
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if task.requeue_count:
        times = "once" if task.requeue_count == 1 else f"{task.requeue_count} times"
        tries += f", requeued {times} (node lost or preempted)"
    if (
        task.exit_code is not None
        and task.failure_info
        and task.failure_info.code == ("FailureExitCode")
    ):
        return f"exit {task.exit_code}{tries}"
    info = task.failure_info
    text = f"{info.code}: {info.message}" if info else "failed"
    if task.exit_code is not None:
        text = f"exit {task.exit_code}{tries}  {text}"
    return text


def _stderr_tail(backend: Backend, job_id: str, task_id: str) -> str:
    from batchflow.exceptions import BatchflowError

    try:
        data = backend.read_file(job_id, task_id, "stderr.txt")
    except (BatchflowError, OSError):  # no stderr.txt (the task never started), or gone
        return ""
    lines = [line for line in data[-4096:].decode(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:160] if lines else ""


def failure_line(backend: Backend, job_id: str, task: TaskInfo) -> str:
    """One line for a failed task: id, why, and the last line of its stderr."""
    tail = _stderr_tail(backend, job_id, task.id)
    info = task.failure_info
    if info and info.message and info.message[:60] in tail:
        tail = ""  # stderr only repeats the failure (a resource file that did not download)
    quoted = f'  stderr: "{tail}"' if tail else ""
    return redact(f"✗ {task.id}  {describe_failure(task)}{quoted}")


def _done(status: JobStatus) -> bool:
    return status.state == "completed" or status.settled


def _bar(status: JobStatus, started: float) -> Any:
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    counts = status.counts
    total = counts.total or 1
    grid = Table.grid(padding=(0, 2))
    grid.add_row(
        # Red only when a task failed; rich's default colour for progress is red-ish.
        ProgressBar(
            total=total,
            completed=counts.completed,
            width=40,
            complete_style="red" if counts.failed else "cyan",
            finished_style="red" if counts.failed else "green",
        ),
        f"{counts.completed:,}/{counts.total:,}",
        f"running {counts.running:,}",
        f"failed {counts.failed:,}" if counts.failed else "",
        time.strftime("%H:%M:%S", time.gmtime(time.monotonic() - started)),
    )
    return grid


def watch(
    backend: Backend,
    job_ids: Sequence[str],
    *,
    live: bool,
    on_failure: Callable[[str], None],
    header: str = "",
    timeout: float | None = None,
) -> list[JobStatus]:
    """Wait until every job is completed or can make no more progress; final statuses.

    Failures are passed to `on_failure` as they happen; with `live`, a progress bar per
    job is drawn on the terminal meanwhile. After `timeout` seconds, `TimeoutError`.
    """
    cursors = dict.fromkeys(job_ids, 0)
    failed_since = getattr(backend, "failed_since", None)
    ensure = getattr(backend, "ensure_progress", None)
    started = time.monotonic()
    next_check = started + _CHECK_ENGINE
    restarts = 0
    last_seen: list[int] = []
    last_pause_seen: list[int] = []
    quiet = 0
    # A remote service is polled with back-off: from its first interval, growing while
    # nothing changes, back to the first when something does.
    poll: tuple[float, float] | None = getattr(backend, "poll", None)
    pause = poll[0] if poll else _REFRESH
    display = None
    if live:
        from rich.live import Live

        from batchflow.cli.output import console

        display = Live(console=console(), refresh_per_second=8, transient=True)
        display.start()
    try:
        while True:
            statuses = [backend.job_status(j) for j in job_ids]
            if failed_since is not None:
                for job_id in job_ids:
                    failed, cursors[job_id] = failed_since(job_id, cursors[job_id])
                    for task in failed:
                        line = failure_line(backend, job_id, task)
                        if display is not None:
                            display.console.print(line, markup=False, highlight=False)
                        else:
                            on_failure(line)
            if display is not None:
                from rich.console import Group

                rows: list[Any] = []
                for status in statuses:
                    if header or len(statuses) > 1:
                        rows.append(f"[bold]{status.id}[/]  {header}")
                    rows.append(_bar(status, started))
                display.update(Group(*rows))
            if all(_done(s) for s in statuses):
                return statuses
            if timeout is not None and time.monotonic() - started > timeout:
                waiting = ", ".join(
                    f"{s.id}: {s.counts.active:,} active, {s.counts.running:,} running"
                    for s in statuses
                    if not _done(s)
                )
                raise TimeoutError(f"still running after {timeout:g} s ({waiting})")
            seen = [s.counts.completed for s in statuses]
            if seen != last_seen:
                last_seen, restarts = seen, 0
            now = time.monotonic()
            if ensure is not None and now >= next_check:
                next_check = now + _CHECK_ENGINE
                if ensure(job_ids[0]):
                    restarts += 1
                    if restarts > 3:
                        from batchflow.exceptions import StateError

                        tail = getattr(backend, "engine_log_tail", lambda: None)()
                        raise StateError(
                            f"the local engine keeps stopping: {tail or 'no log'}",
                            elsewhere=False,
                        )
            # The last few tasks: look more often, so the end is seen when it comes (for
            # half a second after the last change; a long last task is watched at the
            # usual pace).
            quiet = quiet + 1 if seen == last_pause_seen else 0
            last_pause_seen = seen
            if poll is not None:
                pause = poll[0] if quiet == 0 else min(poll[1], pause * 1.5)
                time.sleep(pause)
                continue
            near_end = all(s.counts.active + s.counts.running <= _FEW for s in statuses)
            time.sleep(_REFRESH_NEAR_END if near_end and quiet < _QUIET_POLLS else _REFRESH)
    finally:
        if display is not None:
            display.stop()
