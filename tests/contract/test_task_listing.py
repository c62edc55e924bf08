"""Task counts, slot counts, listing with filters and paging (docs/semantics.md)."""

from __future__ import annotations

from typing import Any

from tests.contract.conftest import all_tasks, refused, sh, task_in, wait_for

#: A dependency on a task that is never added: the task stays `active`.
NEVER = {"dependsOn": {"taskIds": ["never-added"]}}


def _mixed_job(client: Any, new_job: Any, gate: Any) -> str:
    """A job with 2 succeeded, 1 failed, 1 running and 1 active task."""
    job_id = new_job(usesTaskDependencies=True)
    client.add_tasks(
        job_id,
        [
            {"id": "ok-1", "commandLine": sh("exit 0")},
            {"id": "ok-2", "commandLine": sh("exit 0")},
            {"id": "bad-1", "commandLine": sh("exit 2")},
            {"id": "run-1", "commandLine": gate("g").command()},
            {"id": "wait-1", "commandLine": sh("exit 0"), **NEVER},
        ],
    )
    for task_id in ("ok-1", "ok-2", "bad-1"):
        task_in(client, job_id, task_id, "completed")
    task_in(client, job_id, "run-1", "running")
    return job_id


def test_task_counts_by_state_and_result(client: Any, new_job: Any, gate: Any) -> None:
    job_id = _mixed_job(client, new_job, gate)
    expected = {"active": 1, "running": 1, "completed": 3, "succeeded": 2, "failed": 1}
    counts = wait_for(
        lambda: client.task_counts(job_id),
        lambda c: c["taskCounts"] == expected,
        "task counts",
    )
    assert counts["taskSlotCounts"] == expected  # every task takes one slot


def test_task_slot_counts_weigh_tasks_by_required_slots(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_tasks(
        job_id,
        [
            {"id": "done", "commandLine": sh("exit 0"), "requiredSlots": 1},
            {"id": "big", "commandLine": gate("g").command(), "requiredSlots": 2},
            {"id": "waiting", "commandLine": sh("exit 0"), "requiredSlots": 3, **NEVER},
        ],
    )
    task_in(client, job_id, "done", "completed")
    task_in(client, job_id, "big", "running")
    counts = wait_for(
        lambda: client.task_counts(job_id),
        lambda c: c["taskCounts"]["completed"] == 1 and c["taskCounts"]["running"] == 1,
        "task counts",
    )
    assert counts["taskCounts"] == {
        "active": 1,
        "running": 1,
        "completed": 1,
        "succeeded": 1,
        "failed": 0,
    }
    assert counts["taskSlotCounts"] == {
        "active": 3,
        "running": 2,
        "completed": 1,
        "succeeded": 1,
        "failed": 0,
    }


def test_task_counts_of_an_unknown_job_is_job_not_found(client: Any, job_ids: Any) -> None:
    job_id = next(job_ids)
    with refused("JobNotFound", job_id=job_id):
        client.task_counts(job_id)


def test_list_tasks_filters_by_state(client: Any, new_job: Any, gate: Any) -> None:
    job_id = _mixed_job(client, new_job, gate)
    assert [t["id"] for t in all_tasks(client, job_id, state="active")] == ["wait-1"]
    assert [t["id"] for t in all_tasks(client, job_id, state="running")] == ["run-1"]
    completed = all_tasks(client, job_id, state="completed")
    assert sorted(t["id"] for t in completed) == ["bad-1", "ok-1", "ok-2"]


def test_list_tasks_filters_by_result(client: Any, new_job: Any, gate: Any) -> None:
    job_id = _mixed_job(client, new_job, gate)
    failed = all_tasks(client, job_id, result="failure")
    assert [t["id"] for t in failed] == ["bad-1"]
    assert failed[0]["executionInfo"]["exitCode"] == 2
    assert sorted(t["id"] for t in all_tasks(client, job_id, result="success")) == [
        "ok-1",
        "ok-2",
    ]


def test_list_tasks_filters_by_id_prefix(client: Any, new_job: Any, gate: Any) -> None:
    job_id = _mixed_job(client, new_job, gate)
    assert sorted(t["id"] for t in all_tasks(client, job_id, id_prefix="ok-")) == [
        "ok-1",
        "ok-2",
    ]
    assert all_tasks(client, job_id, id_prefix="nothing") == []


def test_list_tasks_combines_filters(client: Any, new_job: Any, gate: Any) -> None:
    job_id = _mixed_job(client, new_job, gate)
    found = all_tasks(client, job_id, state="completed", id_prefix="bad")
    assert [t["id"] for t in found] == ["bad-1"]


def test_list_tasks_returns_tasks_in_the_wire_shape(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_task(job_id, {"id": "t", "commandLine": sh("exit 0"), **NEVER})
    (listed,) = all_tasks(client, job_id)
    assert listed == client.get_task(job_id, "t")


def test_list_tasks_pages_with_a_continuation(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    ids = [f"t{n:02}" for n in range(25)]
    client.add_tasks(job_id, [{"id": i, "commandLine": sh("exit 0"), **NEVER} for i in ids])
    first = client.list_tasks(job_id, limit=10)
    assert len(first) == 10 and first.continuation
    second = client.list_tasks(job_id, limit=10, continuation=first.continuation)
    third = client.list_tasks(job_id, limit=10, continuation=second.continuation)
    assert len(second) == 10 and second.continuation
    assert len(third) == 5 and third.continuation is None
    assert sorted(t["id"] for t in [*first, *second, *third]) == ids


def test_list_tasks_continuation_stays_valid_while_tasks_are_added(
    client: Any, new_job: Any
) -> None:
    job_id = new_job(usesTaskDependencies=True)
    ids = [f"t{n:02}" for n in range(25)]
    client.add_tasks(job_id, [{"id": i, "commandLine": sh("exit 0"), **NEVER} for i in ids])
    page = client.list_tasks(job_id, limit=10)
    seen = [t["id"] for t in page]
    later = [f"u{n:02}" for n in range(15)]  # after the others in any order
    for chunk in (later[:5], later[5:10], later[10:]):
        client.add_tasks(job_id, [{"id": i, "commandLine": sh("exit 0"), **NEVER} for i in chunk])
        if page.continuation is None:
            break
        page = client.list_tasks(job_id, limit=10, continuation=page.continuation)
        seen += [t["id"] for t in page]
    while page.continuation is not None:
        page = client.list_tasks(job_id, limit=10, continuation=page.continuation)
        seen += [t["id"] for t in page]
    assert len(seen) == len(set(seen)), seen
    assert sorted(seen) == ids + later


def test_list_tasks_of_an_unknown_job_is_job_not_found(client: Any, job_ids: Any) -> None:
    job_id = next(job_ids)
    with refused("JobNotFound", job_id=job_id):
        client.list_tasks(job_id)


def test_list_tasks_with_an_unknown_state_is_invalid_query_parameter_value(
    client: Any, new_job: Any
) -> None:
    job_id = new_job()
    with refused("InvalidQueryParameterValue"):
        client.list_tasks(job_id, state="sleeping")
