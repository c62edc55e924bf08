"""The one line the progress view prints for a failed task."""

from __future__ import annotations

from batchflow.backends.base import FailureInfo, TaskInfo
from batchflow.cli.progress import describe_failure

EXIT = FailureInfo("usererror", "FailureExitCode", "exit code 1")


def task(retries: int, requeues: int, info: FailureInfo | None = EXIT) -> TaskInfo:
    return TaskInfo(
        id="t",
        state="completed",
        command_line="x",
        exit_code=1,
        result="failure",
        failure_info=info,
        retry_count=retries,
        requeue_count=requeues,
    )


def test_retries_and_requeues_are_told_apart() -> None:
    assert describe_failure(task(0, 0)) == "exit 1"
    assert describe_failure(task(2, 0)) == "exit 1 after 3 attempts"
    assert describe_failure(task(0, 1)) == "exit 1, requeued once (node lost or preempted)"
    assert describe_failure(task(1, 3)) == (
        "exit 1 after 2 attempts, requeued 3 times (node lost or preempted)"
    )
