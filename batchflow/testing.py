"""Run flows in your own tests: the local engine on a private state directory.

The `batchflow_local` pytest fixture (registered with the package) gives a `LocalBatch`:

    def test_nightly_flow(batchflow_local):
        result = batchflow_local.submit("flows/nightly.py")
        assert result.succeeded, result.failures
        assert (result.results("nightly") / "merge" / "report.csv").exists()

`submit` validates the flow as `batchflow submit` does (an invalid flow raises
`FlowInvalid` with every problem), runs it with Azure Batch semantics and waits until each
job is completed or can make no more progress. Nothing is left behind: the engine and any
task still running are stopped when the test ends. Outside pytest, use `LocalBatch` as a
context manager.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchflow.backends.base import JobStatus, TaskCounts, TaskInfo
    from batchflow.backends.local import LocalBackend
    from batchflow.dsl import Job

__all__ = ["JobOutcome", "LocalBatch", "RunResult"]


@dataclass(frozen=True)
class JobOutcome:
    """Where one job ended: its state, counts and failed tasks."""

    status: JobStatus
    failed: list[TaskInfo]
    """The failed tasks, in definition order."""
    failures: list[str]
    """One line per failed task, as `batchflow submit` prints it (exit code, stderr tail)."""

    @property
    def id(self) -> str:
        return self.status.id

    @property
    def state(self) -> str:
        return self.status.state

    @property
    def counts(self) -> TaskCounts:
        return self.status.counts

    @property
    def succeeded(self) -> bool:
        """Every task ran and succeeded."""
        return self.status.counts.succeeded == self.status.counts.total


@dataclass(frozen=True)
class RunResult:
    """What one `LocalBatch.submit` ran: each of the flow's jobs, and their files."""

    jobs: Mapping[str, JobOutcome]
    batch: LocalBatch = field(repr=False)

    @property
    def succeeded(self) -> bool:
        """Every task of every job succeeded."""
        return all(job.succeeded for job in self.jobs.values())

    @property
    def failures(self) -> list[str]:
        """A line per failed task of every job (handy as an assert message)."""
        return [line for job in self.jobs.values() for line in job.failures]

    def __getitem__(self, job_id: str) -> JobOutcome:
        return self.jobs[job_id]

    def __iter__(self) -> Iterator[JobOutcome]:
        return iter(self.jobs.values())

    def _job(self, job: str | None) -> str:
        if job is not None:
            return job
        if len(self.jobs) != 1:
            names = ", ".join(self.jobs)
            raise ValueError(f"the flow has {len(self.jobs)} jobs: name one ({names})")
        return next(iter(self.jobs))

    def log(self, task: str, *, job: str | None = None, stderr: bool = False) -> str:
        """A task's stdout (or stderr) as text."""
        name = "stderr.txt" if stderr else "stdout.txt"
        data = self.batch.backend.read_file(self._job(job), task, name)
        return data.decode(errors="replace")

    def results(self, job: str | None = None) -> Path:
        """The folder where the job's `outputs=` files were collected (`TASK/PATH`)."""
        return self.batch.backend.state.root / "results" / self._job(job)


class LocalBatch:
    """The local engine on its own state directory, for tests and scripts."""

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        slots: int | None = None,
        nodes: int | None = None,
        timeout: float = 600.0,
    ) -> None:
        from batchflow.backends.local import LocalBackend

        self.backend: LocalBackend = LocalBackend(state_dir, slots=slots, nodes=nodes)
        self.timeout = timeout

    @property
    def state_dir(self) -> Path:
        return self.backend.state.root

    def submit(
        self,
        flow: str | os.PathLike[str] | Job,
        *,
        job: str | None = None,
        job_id: str | None = None,
        pool_id: str | None = None,
        replace: bool = False,
        strict: bool = False,
        timeout: float | None = None,
    ) -> RunResult:
        """Validate and run a flow file (or a `Job`), and wait for its jobs to end.

        `job`, `job_id`, `pool_id`, `replace` and `strict` are `batchflow submit`'s options.
        Raises `FlowInvalid` for an invalid flow, `TimeoutError` when a job is still running
        after `timeout` seconds (default: the `LocalBatch`'s).
        """
        from batchflow.backends.base import each_task
        from batchflow.cli.progress import failure_line, watch
        from batchflow.dsl import Job
        from batchflow.loader import Flow, load

        if isinstance(flow, Job):
            loaded = Flow(f"job {flow.id!r}", [flow])
        else:
            loaded = load(Path(flow), job_id=job_id, pool_id=pool_id)
        loaded.check(strict=strict)
        jobs = loaded.jobs if job is None else [loaded.job(job)]
        ids = [self.backend.submit(j, replace=replace).job_id for j in jobs]
        statuses = watch(
            self.backend,
            ids,
            live=False,
            on_failure=lambda line: None,
            timeout=self.timeout if timeout is None else timeout,
        )
        outcomes: dict[str, JobOutcome] = {}
        for status in statuses:
            failed = list(each_task(self.backend, status.id, result="failure"))
            lines = [failure_line(self.backend, status.id, task) for task in failed]
            outcomes[status.id] = JobOutcome(status, failed, lines)
        return RunResult(outcomes, self)

    def close(self) -> None:
        """Stop the engine and whatever it still runs; the state directory stays."""
        from batchflow.backends.local.control import stop_engine

        try:
            self.backend.close()
        finally:
            stop_engine(self.backend.state)

    def __enter__(self) -> LocalBatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
