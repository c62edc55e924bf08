"""Operations on one task: reactivate, terminate, delete, update (docs/semantics.md)."""

from __future__ import annotations

from typing import Any

from tests.contract.conftest import all_tasks, job_in, refused, sh, task_in, wait_for

#: A dependency on a task that is never added: the task stays `active`.
NEVER = {"dependsOn": {"taskIds": ["never-added"]}}


def _failed_task(client: Any, job_id: str, gate: Any) -> Any:
    """Task `t` of `job_id`: it fails until `gate` opens, then succeeds."""
    fixed = gate("fixed")
    client.add_task(job_id, {"id": "t", "commandLine": sh(fixed.test())})
    task = task_in(client, job_id, "t", "completed")
    assert task["executionInfo"]["result"] == "failure"
    return fixed


# -- reactivate --------------------------------------------------------------------------


def test_reactivate_puts_a_failed_task_back_to_active_with_its_retries_reset(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id = new_job(constraints={"maxTaskRetryCount": 1})
    _failed_task(client, job_id, gate)
    assert client.get_task(job_id, "t")["executionInfo"]["retryCount"] == 1
    client.disable_job(job_id, "wait")  # nothing starts: the reactivated task stays active
    job_in(client, job_id, "disabled")
    client.reactivate_task(job_id, "t")
    task = client.get_task(job_id, "t")
    assert task["state"] == "active"
    assert task["previousState"] == "completed"
    info = task["executionInfo"]
    assert info["retryCount"] == 0
    for gone in ("exitCode", "result", "failureInfo", "endTime"):
        assert gone not in info, gone


def test_reactivated_task_runs_again(client: Any, new_job: Any, gate: Any) -> None:
    job_id = new_job()
    fixed = _failed_task(client, job_id, gate)
    fixed.open()
    client.reactivate_task(job_id, "t")
    task = wait_for(
        lambda: client.get_task(job_id, "t"),
        lambda t: t["executionInfo"].get("result") == "success",
        "reactivated task succeeds",
    )
    assert task["executionInfo"]["exitCode"] == 0
    counts = wait_for(
        lambda: client.task_counts(job_id)["taskCounts"],
        lambda c: c["succeeded"] == 1,
        "counts show the success",
    )
    assert counts["failed"] == 0


def test_reactivate_active_task_is_task_not_completed(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_task(job_id, {"id": "t", "commandLine": sh("exit 0"), **NEVER})
    with refused("TaskNotCompleted", job_id=job_id, task_id="t"):
        client.reactivate_task(job_id, "t")


def test_reactivate_running_task_is_task_not_completed(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "t", "commandLine": gate("g").command()})
    task_in(client, job_id, "t", "running")
    with refused("TaskNotCompleted", job_id=job_id, task_id="t"):
        client.reactivate_task(job_id, "t")


def test_reactivate_succeeded_task_is_task_succeeded(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "t", "commandLine": sh("exit 0")})
    task_in(client, job_id, "t", "completed")
    with refused("TaskSucceeded", job_id=job_id, task_id="t"):
        client.reactivate_task(job_id, "t")


def test_reactivate_in_a_completed_job_is_job_completed(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id = new_job()
    _failed_task(client, job_id, gate)
    client.terminate_job(job_id)
    job_in(client, job_id, "completed")
    with refused("JobCompleted", job_id=job_id):
        client.reactivate_task(job_id, "t")
    assert client.get_task(job_id, "t")["executionInfo"]["result"] == "failure"


def test_reactivate_unknown_task_is_task_not_found(client: Any, new_job: Any) -> None:
    job_id = new_job()
    with refused("TaskNotFound", job_id=job_id, task_id="nope"):
        client.reactivate_task(job_id, "nope")


# -- terminate ---------------------------------------------------------------------------


def test_terminate_running_task_completes_it_with_task_ended(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "t", "commandLine": gate("g").command()})
    task_in(client, job_id, "t", "running")
    client.terminate_task(job_id, "t")
    task = task_in(client, job_id, "t", "completed")
    assert task["executionInfo"]["result"] == "failure"
    assert task["executionInfo"]["failureInfo"]["code"] == "TaskEnded"


def test_terminate_active_task_completes_it(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_task(job_id, {"id": "t", "commandLine": sh("exit 0"), **NEVER})
    client.terminate_task(job_id, "t")
    task = task_in(client, job_id, "t", "completed")
    assert task["executionInfo"]["result"] == "failure"
    assert task["executionInfo"]["failureInfo"]["code"] == "TaskEnded"
    assert "exitCode" not in task["executionInfo"]


def test_terminate_completed_task_is_task_completed(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "t", "commandLine": sh("exit 0")})
    task_in(client, job_id, "t", "completed")
    with refused("TaskCompleted", job_id=job_id, task_id="t"):
        client.terminate_task(job_id, "t")


def test_terminate_task_twice_is_task_completed(client: Any, new_job: Any, gate: Any) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "t", "commandLine": gate("g").command()})
    task_in(client, job_id, "t", "running")
    client.terminate_task(job_id, "t")
    task_in(client, job_id, "t", "completed")
    with refused("TaskCompleted", job_id=job_id, task_id="t"):
        client.terminate_task(job_id, "t")


# -- delete ------------------------------------------------------------------------------


def test_delete_completed_task_removes_it(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.add_tasks(
        job_id,
        [{"id": "gone", "commandLine": sh("exit 0")}, {"id": "kept", "commandLine": sh("exit 0")}],
    )
    task_in(client, job_id, "gone", "completed")
    client.delete_task(job_id, "gone")
    with refused("TaskNotFound", job_id=job_id, task_id="gone"):
        client.get_task(job_id, "gone")
    assert [t["id"] for t in all_tasks(client, job_id)] == ["kept"]


def test_delete_running_task_removes_it(client: Any, new_job: Any, gate: Any) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "t", "commandLine": gate("g").command()})
    task_in(client, job_id, "t", "running")
    client.delete_task(job_id, "t")
    with refused("TaskNotFound", job_id=job_id, task_id="t"):
        client.get_task(job_id, "t")
    counts = wait_for(
        lambda: client.task_counts(job_id)["taskCounts"],
        lambda c: c["running"] == 0,
        "no task running",
    )
    assert counts == {"active": 0, "running": 0, "completed": 0, "succeeded": 0, "failed": 0}


def test_delete_active_task_removes_it(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_task(job_id, {"id": "t", "commandLine": sh("exit 0"), **NEVER})
    client.delete_task(job_id, "t")
    assert all_tasks(client, job_id) == []
    assert client.task_counts(job_id)["taskCounts"]["active"] == 0


def test_deleted_task_id_can_be_added_again(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "t", "commandLine": sh("exit 3")})
    task_in(client, job_id, "t", "completed")
    client.delete_task(job_id, "t")
    client.add_task(job_id, {"id": "t", "commandLine": sh("exit 0")})
    task = wait_for(
        lambda: client.get_task(job_id, "t"),
        lambda t: t["state"] == "completed",
        "the new t completes",
    )
    assert task["executionInfo"]["exitCode"] == 0


def test_delete_unknown_task_is_task_not_found(client: Any, new_job: Any) -> None:
    job_id = new_job()
    with refused("TaskNotFound", job_id=job_id, task_id="nope"):
        client.delete_task(job_id, "nope")


# -- update ------------------------------------------------------------------------------


def test_update_task_replaces_its_constraints(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_task(
        job_id,
        {
            "id": "t",
            "commandLine": sh("exit 0"),
            "constraints": {"retentionTime": "PT2H"},
            **NEVER,
        },
    )
    before = client.get_task(job_id, "t")
    client.update_task(job_id, "t", {"maxTaskRetryCount": 2, "maxWallClockTime": "PT1H"})
    task = client.get_task(job_id, "t")
    assert task["constraints"]["maxTaskRetryCount"] == 2
    assert task["constraints"]["maxWallClockTime"] == "PT1H"
    assert task["eTag"] != before["eTag"]


def test_updated_constraints_apply_to_the_next_attempt(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_task(
        job_id,
        {"id": "t", "commandLine": sh("exit 4"), "dependsOn": {"taskIds": ["parent"]}},
    )
    client.update_task(job_id, "t", {"maxTaskRetryCount": 2})
    client.add_task(job_id, {"id": "parent", "commandLine": sh("exit 0")})
    info = task_in(client, job_id, "t", "completed")["executionInfo"]
    assert info["retryCount"] == 2
    assert info["exitCode"] == 4


def test_update_completed_task_is_task_completed(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "t", "commandLine": sh("exit 0")})
    task_in(client, job_id, "t", "completed")
    with refused("TaskCompleted", job_id=job_id, task_id="t"):
        client.update_task(job_id, "t", {"maxTaskRetryCount": 1})


def test_update_task_with_an_invalid_constraint_is_invalid_property_value(
    client: Any, new_job: Any
) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_task(job_id, {"id": "t", "commandLine": sh("exit 0"), **NEVER})
    with refused("InvalidPropertyValue", job_id=job_id, task_id="t"):
        client.update_task(job_id, "t", {"maxWallClockTime": "forever"})


def test_update_unknown_task_is_task_not_found(client: Any, new_job: Any) -> None:
    job_id = new_job()
    with refused("TaskNotFound", job_id=job_id, task_id="nope"):
        client.update_task(job_id, "nope", {"maxTaskRetryCount": 1})
