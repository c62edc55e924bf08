"""Jobs: create, get, list, update (docs/semantics.md)."""

from __future__ import annotations

from typing import Any

from tests.contract.conftest import (
    INFINITE,
    job_in,
    refused,
    sh,
    task_in,
)


def test_create_job_returns_it_active(client: Any, target: Any, job_ids: Any) -> None:
    job_id = next(job_ids)
    created = client.create_job({"id": job_id, "poolInfo": {"poolId": target.pool_id}})
    assert created["id"] == job_id
    assert created["state"] == "active"
    assert client.get_job(job_id) == created


def test_create_job_with_an_existing_id_is_job_exists(client: Any, new_job: Any) -> None:
    job_id = new_job()
    with refused("JobExists", job_id=job_id):
        client.create_job({"id": job_id, "poolInfo": {"poolId": "other"}})


def test_job_ids_are_unique_whatever_their_case(client: Any, new_job: Any) -> None:
    job_id = new_job()
    with refused("JobExists", job_id=job_id.upper()):
        client.create_job({"id": job_id.upper(), "poolInfo": {"poolId": "other"}})


def test_get_job_is_case_insensitive_and_keeps_the_case_given(
    client: Any, job_ids: Any, target: Any
) -> None:
    job_id = next(job_ids) + "-MixedCase"
    client.create_job({"id": job_id, "poolInfo": {"poolId": target.pool_id}})
    assert client.get_job(job_id.lower())["id"] == job_id


def test_get_job_fills_in_batch_defaults(client: Any, new_job: Any, target: Any) -> None:
    job = client.get_job(new_job())
    assert job["priority"] == 0
    assert job["maxParallelTasks"] == -1
    assert job["allowTaskPreemption"] is False
    assert job["usesTaskDependencies"] is False
    assert job["constraints"] == {"maxWallClockTime": INFINITE, "maxTaskRetryCount": 0}
    assert job["onAllTasksComplete"] == "noaction"
    assert job["onTaskFailure"] == "noaction"
    assert job["poolInfo"] == {"poolId": target.pool_id}
    assert job["executionInfo"]["startTime"] == job["creationTime"]
    assert "endTime" not in job["executionInfo"]
    assert "previousState" not in job


def test_get_job_has_etag_and_last_modified(client: Any, new_job: Any) -> None:
    job = client.get_job(new_job())
    assert job["eTag"]
    assert job["lastModified"].endswith("Z")
    assert job["stateTransitionTime"].endswith("Z")


def test_job_etag_changes_on_every_write(client: Any, new_job: Any) -> None:
    job_id = new_job()
    tags = [client.get_job(job_id)["eTag"]]
    client.update_job(job_id, {"priority": 10})
    tags.append(client.get_job(job_id)["eTag"])
    client.update_job(job_id, {"priority": 20})
    tags.append(client.get_job(job_id)["eTag"])
    client.disable_job(job_id, "wait")
    tags.append(client.get_job(job_id)["eTag"])
    assert len(set(tags)) == len(tags), tags


def test_job_last_modified_moves_forward_on_a_write(client: Any, new_job: Any) -> None:
    job_id = new_job()
    before = client.get_job(job_id)
    client.update_job(job_id, {"priority": 5})
    after = client.get_job(job_id)
    assert after["lastModified"] > before["lastModified"]
    assert after["creationTime"] == before["creationTime"]


def test_get_unknown_job_is_job_not_found(client: Any, job_ids: Any) -> None:
    job_id = next(job_ids)
    with refused("JobNotFound", job_id=job_id):
        client.get_job(job_id)


def test_create_job_keeps_the_properties_given(client: Any, new_job: Any) -> None:
    job = client.get_job(
        new_job(
            priority=100,
            maxParallelTasks=2,
            constraints={"maxTaskRetryCount": 3},
            metadata=[{"name": "owner", "value": "me"}],
            usesTaskDependencies=True,
        )
    )
    assert job["priority"] == 100
    assert job["maxParallelTasks"] == 2
    assert job["constraints"] == {"maxWallClockTime": INFINITE, "maxTaskRetryCount": 3}
    assert job["metadata"] == [{"name": "owner", "value": "me"}]
    assert job["usesTaskDependencies"] is True


# -- listing ---------------------------------------------------------------------------


def _listed(client: Any, prefix: str, **filters: Any) -> list[str]:
    found: list[str] = []
    continuation = None
    while True:
        page = client.list_jobs(id_prefix=prefix, continuation=continuation, **filters)
        found += [j["id"] for j in page]
        continuation = page.continuation
        if continuation is None:
            return found


def test_list_jobs_returns_every_job_once(client: Any, new_job: Any, job_ids: Any) -> None:
    made = [new_job() for _ in range(3)]
    prefix = made[0].rsplit("-", 1)[0]
    assert sorted(_listed(client, prefix)) == sorted(made)


def test_list_jobs_pages_with_a_continuation(client: Any, new_job: Any) -> None:
    made = [new_job() for _ in range(5)]
    prefix = made[0].rsplit("-", 1)[0]
    first = client.list_jobs(id_prefix=prefix, limit=2)
    assert len(first) == 2
    assert first.continuation
    second = client.list_jobs(id_prefix=prefix, limit=2, continuation=first.continuation)
    third = client.list_jobs(id_prefix=prefix, limit=2, continuation=second.continuation)
    assert len(second) == 2 and second.continuation
    assert len(third) == 1 and third.continuation is None
    assert sorted(j["id"] for j in [*first, *second, *third]) == sorted(made)


def test_list_jobs_continuation_stays_valid_while_jobs_are_added(client: Any, new_job: Any) -> None:
    made = [new_job() for _ in range(5)]
    prefix = made[0].rsplit("-", 1)[0]
    page = client.list_jobs(id_prefix=prefix, limit=2)
    seen = [j["id"] for j in page]
    later = [new_job(id=f"{prefix}-z{n}") for n in range(2)]  # sort after the others too
    while page.continuation is not None:
        page = client.list_jobs(id_prefix=prefix, limit=2, continuation=page.continuation)
        seen += [j["id"] for j in page]
    assert len(seen) == len(set(seen)), seen
    assert sorted(seen) == sorted(made + later)


def test_list_jobs_filters_by_state(client: Any, new_job: Any) -> None:
    ended, running = new_job(), new_job()
    prefix = ended.rsplit("-", 1)[0]
    client.terminate_job(ended)
    job_in(client, ended, "completed")
    assert _listed(client, prefix, state="completed") == [ended]
    assert _listed(client, prefix, state="active") == [running]


def test_list_jobs_filters_by_id_prefix(client: Any, new_job: Any, job_ids: Any) -> None:
    base = next(job_ids)
    wanted = [new_job(id=f"{base}-a{n}") for n in range(2)]
    new_job(id=f"{base}-b0")
    assert sorted(_listed(client, f"{base}-a")) == sorted(wanted)


# -- update (PATCH) and replace (PUT) -----------------------------------------------------


def test_update_job_changes_only_the_properties_given(client: Any, new_job: Any) -> None:
    job_id = new_job(priority=1, metadata=[{"name": "k", "value": "v"}])
    client.update_job(job_id, {"priority": 500, "maxParallelTasks": 3})
    job = client.get_job(job_id)
    assert job["priority"] == 500
    assert job["maxParallelTasks"] == 3
    assert job["metadata"] == [{"name": "k", "value": "v"}]


def test_replace_job_resets_the_properties_omitted(client: Any, new_job: Any, target: Any) -> None:
    job_id = new_job(
        priority=1,
        maxParallelTasks=2,
        constraints={"maxTaskRetryCount": 4},
        metadata=[{"name": "k", "value": "v"}],
    )
    client.update_job(job_id, {"priority": 7, "poolInfo": {"poolId": target.pool_id}}, replace=True)
    job = client.get_job(job_id)
    assert job["priority"] == 7
    assert job["maxParallelTasks"] == -1
    assert job["constraints"] == {"maxWallClockTime": INFINITE, "maxTaskRetryCount": 0}
    assert "metadata" not in job


def test_update_job_pool_info_of_an_active_job_is_refused(client: Any, new_job: Any) -> None:
    job_id = new_job()
    with refused("OperationInvalidForCurrentState", job_id=job_id):
        client.update_job(job_id, {"poolInfo": {"poolId": "elsewhere"}})
    assert client.get_job(job_id)["poolInfo"]["poolId"] != "elsewhere"


def test_update_job_pool_info_of_a_disabled_job_is_accepted(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.disable_job(job_id, "requeue")
    job_in(client, job_id, "disabled")
    client.update_job(job_id, {"poolInfo": {"poolId": "elsewhere"}})
    assert client.get_job(job_id)["poolInfo"] == {"poolId": "elsewhere"}


def test_update_job_from_terminatejob_back_to_noaction_is_refused(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id = new_job()
    client.add_task(job_id, {"id": "hold", "commandLine": gate("g").command()})
    client.update_job(job_id, {"onAllTasksComplete": "terminatejob"})
    with refused("InvalidPropertyValue", job_id=job_id):
        client.update_job(job_id, {"onAllTasksComplete": "noaction"})
    assert client.get_job(job_id)["onAllTasksComplete"] == "terminatejob"


def test_update_job_of_a_create_only_property_is_property_cannot_be_updated(
    client: Any, new_job: Any
) -> None:
    job_id = new_job()
    with refused("PropertyCannotBeUpdated", job_id=job_id):
        client.update_job(job_id, {"usesTaskDependencies": True})
    assert client.get_job(job_id)["usesTaskDependencies"] is False


def test_update_completed_job_is_job_completed(client: Any, new_job: Any) -> None:
    job_id = new_job()
    client.terminate_job(job_id)
    job_in(client, job_id, "completed")
    with refused("JobCompleted", job_id=job_id):
        client.update_job(job_id, {"priority": 1})


def test_update_unknown_job_is_job_not_found(client: Any, job_ids: Any) -> None:
    job_id = next(job_ids)
    with refused("JobNotFound", job_id=job_id):
        client.update_job(job_id, {"priority": 1})


def test_terminatejob_set_after_the_tasks_are_added_completes_the_job(
    client: Any, new_job: Any
) -> None:
    job_id = new_job()
    client.add_tasks(job_id, [{"id": f"t{n}", "commandLine": sh("exit 0")} for n in range(3)])
    for n in range(3):
        task_in(client, job_id, f"t{n}", "completed")
    assert client.get_job(job_id)["state"] == "active"  # noaction: all done, still active
    client.update_job(job_id, {"onAllTasksComplete": "terminatejob"})
    job = job_in(client, job_id, "completed")
    assert job["executionInfo"]["terminateReason"] == "AllTasksComplete"
    assert "endTime" in job["executionInfo"]


def test_terminatejob_completes_the_job_when_its_last_task_completes(
    client: Any, new_job: Any, gate: Any
) -> None:
    # Created with noaction, the tasks added, then terminatejob (a job created with
    # terminatejob and no tasks may complete before the add: Batch's trap).
    job_id = new_job()
    last = gate("last")
    client.add_tasks(
        job_id,
        [
            {"id": "quick", "commandLine": sh("exit 0")},
            {"id": "slow", "commandLine": last.command("exit 1")},
        ],
    )
    client.update_job(job_id, {"onAllTasksComplete": "terminatejob"})
    task_in(client, job_id, "quick", "completed")
    assert client.get_job(job_id)["state"] == "active"  # "slow" has not completed
    last.open()
    job = job_in(client, job_id, "completed")
    assert job["executionInfo"]["terminateReason"] == "AllTasksComplete"
