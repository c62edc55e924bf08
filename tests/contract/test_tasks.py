"""Tasks: add one, add a collection, get, run to completion (docs/semantics.md)."""

from __future__ import annotations

from typing import Any

from tests.contract.conftest import (
    INFINITE,
    all_tasks,
    refused,
    sh,
    task_in,
)

#: A dependency on a task that is never added: the task stays `active`.
NEVER = {"dependsOn": {"taskIds": ["never-added"]}}


def test_add_task_returns_it_active(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    task = client.add_task(job_id, {"id": "t1", "commandLine": sh("exit 0"), **NEVER})
    assert task["id"] == "t1"
    assert task["state"] == "active"
    assert task["commandLine"] == sh("exit 0")


def test_get_task_fills_in_batch_defaults(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True, constraints={"maxTaskRetryCount": 3})
    client.add_task(job_id, {"id": "t1", "commandLine": sh("exit 0"), **NEVER})
    task = client.get_task(job_id, "t1")
    assert task["constraints"] == {
        "maxWallClockTime": INFINITE,
        "retentionTime": "P7D",
        "maxTaskRetryCount": 3,  # the job's
    }
    assert task["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}
    assert task["requiredSlots"] == 1
    assert task["executionInfo"] == {"retryCount": 0, "requeueCount": 0}
    assert task["dependsOn"] == {"taskIds": ["never-added"]}
    assert "nodeInfo" not in task


def test_task_in_its_first_active_state_has_no_previous_state(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_task(job_id, {"id": "t1", "commandLine": sh("exit 0"), **NEVER})
    task = client.get_task(job_id, "t1")
    assert task["state"] == "active"
    assert "previousState" not in task
    assert "previousStateTransitionTime" not in task
    assert task["stateTransitionTime"] == task["creationTime"]


def test_get_task_has_etag_and_last_modified(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    added = client.add_task(job_id, {"id": "t1", "commandLine": sh("exit 0"), **NEVER})
    task = client.get_task(job_id, "t1")
    assert task["eTag"] == added["eTag"]
    assert task["lastModified"].endswith("Z")


def test_task_own_max_task_retry_count_overrides_the_jobs(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True, constraints={"maxTaskRetryCount": 3})
    client.add_task(
        job_id,
        {
            "id": "t1",
            "commandLine": sh("exit 0"),
            "constraints": {"maxTaskRetryCount": 1, "retentionTime": "PT1H"},
            **NEVER,
        },
    )
    constraints = client.get_task(job_id, "t1")["constraints"]
    assert constraints["maxTaskRetryCount"] == 1
    assert constraints["retentionTime"] == "PT1H"
    assert constraints["maxWallClockTime"] == INFINITE


def test_add_task_with_an_existing_id_is_task_exists(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "t1", "commandLine": sh("exit 0")})
    with refused("TaskExists", job_id=job_id, task_id="T1"):
        client.add_task(job_id, {"id": "T1", "commandLine": sh("exit 0")})


def test_add_task_to_an_unknown_job_is_job_not_found(client: Any, job_ids: Any) -> None:
    job_id = next(job_ids)
    with refused("JobNotFound", job_id=job_id):
        client.add_task(job_id, {"id": "t1", "commandLine": sh("exit 0")})


def test_get_unknown_task_is_task_not_found(client: Any, new_job: Any) -> None:
    job_id = new_job()
    with refused("TaskNotFound", job_id=job_id, task_id="nope"):
        client.get_task(job_id, "nope")


def test_get_task_of_an_unknown_job_is_job_not_found(client: Any, job_ids: Any) -> None:
    job_id = next(job_ids)
    with refused("JobNotFound", job_id=job_id):
        client.get_task(job_id, "t1")


def test_task_with_depends_on_in_a_job_without_dependencies_is_refused(
    client: Any, new_job: Any
) -> None:
    job_id = new_job()
    with refused("TaskDependenciesNotSpecifiedOnJob", task_id="t1"):
        client.add_task(job_id, {"id": "t1", "commandLine": sh("exit 0"), **NEVER})


# -- collections -----------------------------------------------------------------------


def test_add_tasks_answers_success_for_each_task(client: Any, new_job: Any) -> None:
    job_id = new_job()
    results = client.add_tasks(
        job_id, [{"id": f"t{n}", "commandLine": sh("exit 0")} for n in range(5)]
    )
    assert sorted(r["taskId"] for r in results) == [f"t{n}" for n in range(5)]
    for result in results:
        assert result["status"] == "success"
        assert result["eTag"] and result["lastModified"]
    assert len(all_tasks(client, job_id)) == 5


def test_add_tasks_reports_task_exists_for_a_duplicate_and_adds_the_others(
    client: Any, new_job: Any
) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "dup", "commandLine": sh("exit 0")})
    results = client.add_tasks(
        job_id,
        [
            {"id": "a", "commandLine": sh("exit 0")},
            {"id": "DUP", "commandLine": sh("exit 0")},
            {"id": "b", "commandLine": sh("exit 0")},
        ],
    )
    by_id = {r["taskId"].lower(): r for r in results}
    assert by_id["dup"]["status"] == "clienterror"
    assert by_id["dup"]["error"]["code"] == "TaskExists"
    assert by_id["a"]["status"] == by_id["b"]["status"] == "success"
    assert sorted(t["id"] for t in all_tasks(client, job_id)) == ["a", "b", "dup"]


def test_add_tasks_reports_invalid_property_value_for_an_invalid_task(
    client: Any, new_job: Any
) -> None:
    job_id = new_job()
    results = client.add_tasks(
        job_id,
        [
            {"id": "good", "commandLine": sh("exit 0")},
            {"id": "bad", "commandLine": sh("exit 0"), "requiredSlots": 0},
        ],
    )
    by_id = {r["taskId"]: r for r in results}
    assert by_id["good"]["status"] == "success"
    assert by_id["bad"]["status"] == "clienterror"
    assert by_id["bad"]["error"]["code"] == "InvalidPropertyValue"
    assert [t["id"] for t in all_tasks(client, job_id)] == ["good"]


def test_add_tasks_reports_an_invalid_task_id(client: Any, new_job: Any) -> None:
    job_id = new_job()
    results = client.add_tasks(job_id, [{"id": "not ok!", "commandLine": sh("exit 0")}])
    assert results[0]["status"] == "clienterror"
    assert results[0]["error"]["code"] == "InvalidPropertyValue"
    assert all_tasks(client, job_id) == []


def test_add_tasks_reports_missing_required_property(client: Any, new_job: Any) -> None:
    job_id = new_job()
    results = client.add_tasks(
        job_id,
        [{"id": "nocmd"}, {"id": "ok", "commandLine": sh("exit 0")}],
    )
    by_id = {r["taskId"]: r for r in results}
    assert by_id["nocmd"]["status"] == "clienterror"
    assert by_id["nocmd"]["error"]["code"] == "MissingRequiredProperty"
    assert by_id["ok"]["status"] == "success"


def test_add_tasks_takes_100_tasks(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    tasks = [{"id": f"t{n:03}", "commandLine": sh("exit 0"), **NEVER} for n in range(100)]
    results = client.add_tasks(job_id, tasks)
    assert [r["status"] for r in results] == ["success"] * 100
    assert len(all_tasks(client, job_id)) == 100


def test_add_tasks_refuses_more_than_100_tasks(client: Any, new_job: Any) -> None:
    job_id = new_job()
    tasks = [{"id": f"t{n:03}", "commandLine": sh("exit 0")} for n in range(101)]
    with refused("InvalidPropertyValue"):
        client.add_tasks(job_id, tasks)
    assert all_tasks(client, job_id) == []


def test_add_tasks_to_an_unknown_job_is_job_not_found(client: Any, job_ids: Any) -> None:
    job_id = next(job_ids)
    with refused("JobNotFound", job_id=job_id):
        client.add_tasks(job_id, [{"id": "t1", "commandLine": sh("exit 0")}])


# -- running -----------------------------------------------------------------------------


def test_task_exiting_zero_completes_with_success(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "t1", "commandLine": sh("exit 0")})
    task = task_in(client, job_id, "t1", "completed")
    info = task["executionInfo"]
    assert info["exitCode"] == 0
    assert info["result"] == "success"
    assert "failureInfo" not in info
    assert info["retryCount"] == 0
    assert info["startTime"] <= info["endTime"]
    assert task["previousState"] == "running"
    assert task["nodeInfo"]["nodeId"]


def test_task_exiting_nonzero_completes_with_failure_exit_code(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "t1", "commandLine": sh("exit 3")})
    info = task_in(client, job_id, "t1", "completed")["executionInfo"]
    assert info["exitCode"] == 3
    assert info["result"] == "failure"
    assert info["failureInfo"]["category"] == "usererror"
    assert info["failureInfo"]["code"] == "FailureExitCode"


def test_failing_task_is_retried_max_task_retry_count_times(client: Any, new_job: Any) -> None:
    job_id = new_job(constraints={"maxTaskRetryCount": 2})
    client.add_task(job_id, {"id": "t1", "commandLine": sh("exit 5")})
    info = task_in(client, job_id, "t1", "completed")["executionInfo"]
    assert info["retryCount"] == 2
    assert info["exitCode"] == 5
    assert info["result"] == "failure"
    assert "lastRetryTime" in info


def test_task_changes_its_etag_when_it_runs(client: Any, new_job: Any) -> None:
    job_id = new_job()
    (added,) = client.add_tasks(job_id, [{"id": "t1", "commandLine": sh("exit 0")}])
    done = task_in(client, job_id, "t1", "completed")
    assert done["eTag"] != added["eTag"]
    assert done["lastModified"] > added["lastModified"]


def test_task_runs_with_its_environment_settings(client: Any, new_job: Any) -> None:
    job_id = new_job(commonEnvironmentSettings=[{"name": "WHO", "value": "job"}])
    client.add_task(
        job_id,
        {
            "id": "t1",
            "commandLine": sh('test "$WHO" = task && test "$AZ_BATCH_TASK_ID" = t1'),
            "environmentSettings": [{"name": "WHO", "value": "task"}],
        },
    )
    assert task_in(client, job_id, "t1", "completed")["executionInfo"]["result"] == "success"


def test_list_subtasks_of_a_task_is_empty(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "t1", "commandLine": sh("exit 0")})
    assert client.list_subtasks(job_id, "t1") == []


def test_list_subtasks_of_an_unknown_task_is_task_not_found(client: Any, new_job: Any) -> None:
    job_id = new_job()
    with refused("TaskNotFound", job_id=job_id, task_id="nope"):
        client.list_subtasks(job_id, "nope")
