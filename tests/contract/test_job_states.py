"""Terminate, delete, disable, enable: what a reader sees when the call returns, and after
(docs/semantics.md)."""

from __future__ import annotations

from typing import Any

import pytest

from batchflow.exceptions import BackendError
from tests.contract.conftest import (
    job_gone,
    job_in,
    refused,
    sh,
    task_in,
    wait_for,
)

#: A dependency on a task that is never added: the task stays `active`.
NEVER = {"dependsOn": {"taskIds": ["never-added"]}}


def _running(client: Any, new_job: Any, gate: Any, **job: Any) -> tuple[str, Any]:
    """A job whose task `run` is running until the returned gate opens."""
    job_id = new_job(**job)
    hold = gate("hold")
    client.add_task(job_id, {"id": "run", "commandLine": hold.command("exit 0")})
    task_in(client, job_id, "run", "running")
    return job_id, hold


def _releasing(client: Any, new_job: Any, gate: Any) -> tuple[str, Any]:
    """A job left `terminating` until the returned gate lets its release task finish."""
    release = gate("release")
    job_id = new_job(
        jobPreparationTask={"commandLine": sh("exit 0")},
        jobReleaseTask={"commandLine": release.command("exit 0")},
    )
    client.add_task(job_id, {"id": "t", "commandLine": gate("t").command()})
    task_in(client, job_id, "t", "running")  # the preparation task has run on its node
    client.terminate_job(job_id)
    assert client.get_job(job_id)["state"] == "terminating"
    return job_id, release


# -- terminate ---------------------------------------------------------------------------


def test_terminate_job_is_visible_when_the_call_returns(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id, _ = _running(client, new_job, gate)
    client.terminate_job(job_id)
    assert client.get_job(job_id)["state"] in ("terminating", "completed")


def test_terminated_job_completes_with_user_terminate(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.terminate_job(job_id)
    job = job_in(client, job_id, "completed")
    assert job["executionInfo"]["terminateReason"] == "UserTerminate"
    assert "endTime" in job["executionInfo"]
    assert job["previousState"] in ("terminating", "active")


def test_terminate_job_records_the_reason_given(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.terminate_job(job_id, "enough")
    job = job_in(client, job_id, "completed")
    assert job["executionInfo"]["terminateReason"] == "enough"


def test_terminate_job_ends_running_tasks_with_task_ended(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id, _ = _running(client, new_job, gate)
    client.terminate_job(job_id)
    job_in(client, job_id, "completed")
    task = client.get_task(job_id, "run")
    assert task["state"] == "completed"
    assert task["executionInfo"]["result"] == "failure"
    assert task["executionInfo"]["failureInfo"]["code"] == "TaskEnded"


def test_terminate_job_keeps_active_tasks_active(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_task(job_id, {"id": "waiting", "commandLine": sh("exit 0"), **NEVER})
    client.terminate_job(job_id)
    job_in(client, job_id, "completed")
    assert client.get_task(job_id, "waiting")["state"] == "active"
    assert client.task_counts(job_id)["taskCounts"]["active"] == 1


def test_terminate_completed_job_is_job_completed(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.terminate_job(job_id)
    job_in(client, job_id, "completed")
    with refused("JobCompleted", job_id=job_id):
        client.terminate_job(job_id)


def test_terminate_unknown_job_is_job_not_found(client: Any, job_ids: Any) -> None:
    job_id = next(job_ids)
    with refused("JobNotFound", job_id=job_id):
        client.terminate_job(job_id)


def test_terminating_job_waits_for_its_release_task(client: Any, new_job: Any, gate: Any) -> None:
    job_id, release = _releasing(client, new_job, gate)
    status = wait_for(
        lambda: client.preparation_status(job_id),
        lambda s: bool(s) and "jobReleaseTaskExecutionInfo" in s[0],
        "release task started",
    )
    assert status[0]["jobReleaseTaskExecutionInfo"]["state"] == "running"
    assert client.get_job(job_id)["state"] == "terminating"
    release.open()
    job_in(client, job_id, "completed")


def test_add_task_to_a_terminating_job_is_job_being_terminated(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id, _ = _releasing(client, new_job, gate)
    with refused("JobBeingTerminated", job_id=job_id):
        client.add_task(job_id, {"id": "late", "commandLine": sh("exit 0")})


def test_update_terminating_job_is_job_being_terminated(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id, _ = _releasing(client, new_job, gate)
    with refused("JobBeingTerminated", job_id=job_id):
        client.update_job(job_id, {"priority": 3})


def test_terminate_terminating_job_is_job_being_terminated(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id, _ = _releasing(client, new_job, gate)
    with refused("JobBeingTerminated", job_id=job_id):
        client.terminate_job(job_id)


def test_add_task_to_a_completed_job_is_job_completed(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.terminate_job(job_id)
    job_in(client, job_id, "completed")
    with refused("JobCompleted", job_id=job_id):
        client.add_task(job_id, {"id": "late", "commandLine": sh("exit 0")})
    results = None
    with refused("JobCompleted", job_id=job_id):
        results = client.add_tasks(job_id, [{"id": "late", "commandLine": sh("exit 0")}])
    assert results is None


def test_preparation_status_reports_prep_and_release_per_node(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id, release = _releasing(client, new_job, gate)
    release.open()
    job_in(client, job_id, "completed")
    (node,) = client.preparation_status(job_id)
    assert node["nodeId"]
    prep = node["jobPreparationTaskExecutionInfo"]
    assert prep["state"] == "completed"
    assert prep["exitCode"] == 0
    assert prep["result"] == "success"
    assert node["jobReleaseTaskExecutionInfo"]["state"] == "completed"


# -- delete ------------------------------------------------------------------------------


def test_delete_job_is_visible_when_the_call_returns(client: Any, new_job: Any, gate: Any) -> None:
    job_id, _ = _running(client, new_job, gate)
    client.delete_job(job_id)
    try:
        state = client.get_job(job_id)["state"]
    except Exception as exc:  # already gone
        assert getattr(exc, "code", None) == "JobNotFound"
    else:
        assert state == "deleting"


def test_deleted_job_ends_in_job_not_found(client: Any, new_job: Any, gate: Any) -> None:
    job_id, _ = _running(client, new_job, gate)
    client.delete_job(job_id)
    job_gone(client, job_id)
    with refused("JobNotFound", job_id=job_id):
        client.list_tasks(job_id)


def test_deleted_job_id_can_be_used_again(client: Any, new_job: Any, target: Any) -> None:
    job_id = new_job()
    client.delete_job(job_id)
    job_gone(client, job_id)
    client.create_job({"id": job_id, "poolInfo": {"poolId": target.pool_id}})
    assert client.get_job(job_id)["state"] == "active"


def test_add_task_to_a_deleting_job_is_refused(client: Any, new_job: Any, gate: Any) -> None:
    job_id, _ = _running(client, new_job, gate)
    client.delete_job(job_id)
    with pytest.raises(BackendError) as caught:
        client.add_task(job_id, {"id": "late", "commandLine": sh("exit 0")})
    # Deleting while the engine kills the task, or gone already: both refuse the add.
    assert caught.value.code in ("JobBeingDeleted", "JobNotFound"), caught.value.code
    assert (caught.value.job_id or "").lower() == job_id.lower()
    job_gone(client, job_id)


def test_delete_unknown_job_is_job_not_found(client: Any, job_ids: Any) -> None:
    job_id = next(job_ids)
    with refused("JobNotFound", job_id=job_id):
        client.delete_job(job_id)


# -- disable and enable -------------------------------------------------------------------


def test_disable_job_is_visible_when_the_call_returns(client: Any, new_job: Any, gate: Any) -> None:
    job_id, _ = _running(client, new_job, gate)
    client.disable_job(job_id, "requeue")
    assert client.get_job(job_id)["state"] in ("disabling", "disabled")


def test_disable_requeue_puts_running_tasks_back_to_active(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id, _ = _running(client, new_job, gate)
    client.disable_job(job_id, "requeue")
    job_in(client, job_id, "disabled")
    task = client.get_task(job_id, "run")
    assert task["state"] == "active"
    assert task["executionInfo"]["requeueCount"] == 1
    assert "lastRequeueTime" in task["executionInfo"]


def test_disable_terminate_completes_running_tasks_as_failed(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id, _ = _running(client, new_job, gate)
    client.disable_job(job_id, "terminate")
    job_in(client, job_id, "disabled")
    task = client.get_task(job_id, "run")
    assert task["state"] == "completed"
    assert task["executionInfo"]["result"] == "failure"
    assert task["executionInfo"]["failureInfo"]["code"] == "TaskEnded"


def test_disable_wait_lets_running_tasks_finish(client: Any, new_job: Any, gate: Any) -> None:
    job_id, hold = _running(client, new_job, gate)
    client.disable_job(job_id, "wait")
    hold.open()
    task = task_in(client, job_id, "run", "completed")
    assert task["executionInfo"]["result"] == "success"
    assert task["executionInfo"]["requeueCount"] == 0
    job_in(client, job_id, "disabled")


def test_disable_wait_stays_disabling_while_tasks_run(client: Any, new_job: Any, gate: Any) -> None:
    job_id, _ = _running(client, new_job, gate, usesTaskDependencies=True)
    client.add_task(job_id, {"id": "waiting", "commandLine": sh("exit 0"), **NEVER})
    client.disable_job(job_id, "wait")
    # Returns once the task is completed: the disable filed before it has been carried
    # out too, wherever requests are handled in order.
    client.terminate_task(job_id, "waiting")
    assert client.get_task(job_id, "run")["state"] == "running"
    assert client.get_job(job_id)["state"] == "disabling"


def test_enable_job_is_visible_when_the_call_returns(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.disable_job(job_id, "requeue")
    job_in(client, job_id, "disabled")
    client.enable_job(job_id)
    assert client.get_job(job_id)["state"] in ("enabling", "active")
    job_in(client, job_id, "active")


def test_enabled_job_runs_the_tasks_added_while_disabled(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.disable_job(job_id, "requeue")
    job_in(client, job_id, "disabled")
    client.add_task(job_id, {"id": "t", "commandLine": sh("exit 0")})
    client.enable_job(job_id)
    task = task_in(client, job_id, "t", "completed")
    assert task["executionInfo"]["result"] == "success"


def test_requeued_task_runs_again_after_enable(client: Any, new_job: Any, gate: Any) -> None:
    job_id, hold = _running(client, new_job, gate)
    client.disable_job(job_id, "requeue")
    job_in(client, job_id, "disabled")
    hold.open()
    client.enable_job(job_id)
    task = task_in(client, job_id, "run", "completed")
    assert task["executionInfo"]["result"] == "success"
    assert task["executionInfo"]["requeueCount"] == 1


def test_disable_completed_job_is_refused(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.terminate_job(job_id)
    job_in(client, job_id, "completed")
    with refused("OperationInvalidForCurrentState", job_id=job_id):
        client.disable_job(job_id, "requeue")


def test_enable_active_job_is_refused(client: Any, new_job: Any) -> None:
    job_id = new_job()
    with refused("OperationInvalidForCurrentState", job_id=job_id):
        client.enable_job(job_id)


def test_disable_with_an_unknown_mode_is_invalid_property_value(client: Any, new_job: Any) -> None:
    job_id = new_job()
    with refused("InvalidPropertyValue", job_id=job_id):
        client.disable_job(job_id, "pause")
    assert client.get_job(job_id)["state"] == "active"


def test_terminate_filed_while_an_enable_is_pending_is_not_lost(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id, _ = _running(client, new_job, gate)
    client.disable_job(job_id, "requeue")
    job_in(client, job_id, "disabled")
    client.enable_job(job_id)
    client.terminate_job(job_id)  # the enable may not have been carried out yet
    job = job_in(client, job_id, "completed")
    assert job["executionInfo"]["terminateReason"] == "UserTerminate"
