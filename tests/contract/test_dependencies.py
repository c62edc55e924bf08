"""Dependencies across adds, as the SDK's create_tasks sends them (docs/semantics.md).

Tasks leave marks in the node's shared directory (`$AZ_BATCH_NODE_SHARED_DIR/<job>`): a
dependent that finds its parent's mark missing exits non-zero, so a success proves it
ran after its parent completed.
"""

from __future__ import annotations

from typing import Any

from tests.contract.conftest import all_tasks, sh, task_in

_MARKS = '"$AZ_BATCH_NODE_SHARED_DIR/$AZ_BATCH_JOB_ID"'


def mark(name: str) -> str:
    """A shell snippet leaving the mark `name`."""
    return f"mkdir -p {_MARKS} && touch {_MARKS}/{name}"


def needs(*names: str) -> str:
    """A shell snippet failing (exit 9) unless every mark in `names` is there."""
    return " && ".join(f"{{ test -e {_MARKS}/{n} || exit 9; }}" for n in names) or "true"


def test_dependent_added_before_its_parent_waits_for_it(
    client: Any, new_job: Any, gate: Any
) -> None:
    job_id = new_job(usesTaskDependencies=True)
    release = gate("parent")
    client.add_task(
        job_id,
        {"id": "child", "commandLine": sh(needs("parent")), "dependsOn": {"taskIds": ["parent"]}},
    )
    client.add_task(job_id, {"id": "parent", "commandLine": release.command(mark("parent"))})
    task_in(client, job_id, "parent", "running")
    assert client.get_task(job_id, "child")["state"] == "active"
    release.open()
    child = task_in(client, job_id, "child", "completed")
    assert child["executionInfo"]["result"] == "success"


def test_dependency_ids_match_whatever_their_case(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_task(
        job_id,
        {"id": "child", "commandLine": sh(needs("p")), "dependsOn": {"taskIds": ["PARENT"]}},
    )
    client.add_task(job_id, {"id": "Parent", "commandLine": sh(mark("p"))})
    child = task_in(client, job_id, "child", "completed")
    assert child["executionInfo"]["result"] == "success"


def test_dependency_on_a_stored_task_is_accepted_in_a_later_add(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_task(job_id, {"id": "parent", "commandLine": sh(mark("parent"))})
    task_in(client, job_id, "parent", "completed")
    client.add_task(
        job_id,
        {"id": "child", "commandLine": sh(needs("parent")), "dependsOn": {"taskIds": ["parent"]}},
    )
    child = task_in(client, job_id, "child", "completed")
    assert child["executionInfo"]["result"] == "success"


def test_task_id_range_covers_tasks_added_later(client: Any, new_job: Any, gate: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    last = gate("3")
    client.add_task(
        job_id,
        {
            "id": "child",
            "commandLine": sh(needs("1", "2", "3")),
            "dependsOn": {"taskIdRanges": [{"start": 1, "end": 3}]},
        },
    )
    client.add_tasks(
        job_id,
        [
            {"id": "1", "commandLine": sh(mark("1"))},
            {"id": "2", "commandLine": sh(mark("2"))},
        ],
    )
    client.add_task(job_id, {"id": "3", "commandLine": last.command(mark("3"))})
    task_in(client, job_id, "1", "completed")
    task_in(client, job_id, "2", "completed")
    task_in(client, job_id, "3", "running")
    assert client.get_task(job_id, "child")["state"] == "active"
    last.open()
    child = task_in(client, job_id, "child", "completed")
    assert child["executionInfo"]["result"] == "success"


def test_task_id_range_members_ignore_leading_zeros(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_task(
        job_id,
        {
            "id": "child",
            "commandLine": sh(needs("seven", "eight")),
            "dependsOn": {"taskIdRanges": [{"start": 7, "end": 8}]},
        },
    )
    client.add_task(job_id, {"id": "007", "commandLine": sh(mark("seven"))})
    client.add_task(job_id, {"id": "08", "commandLine": sh(mark("eight"))})
    child = task_in(client, job_id, "child", "completed")
    assert child["executionInfo"]["result"] == "success"


def test_task_id_range_ignores_ids_that_are_not_integers(client: Any, new_job: Any) -> None:
    job_id = new_job(usesTaskDependencies=True)
    client.add_tasks(
        job_id,
        [
            {"id": "5flamingoes", "commandLine": sh("exit 1")},
            {"id": "5", "commandLine": sh(mark("five"))},
        ],
    )
    client.add_task(
        job_id,
        {
            "id": "child",
            "commandLine": sh(needs("five")),
            "dependsOn": {"taskIdRanges": [{"start": 5, "end": 5}]},
        },
    )
    child = task_in(client, job_id, "child", "completed")
    assert child["executionInfo"]["result"] == "success"
    failed = task_in(client, job_id, "5flamingoes", "completed")
    assert failed["executionInfo"]["result"] == "failure"


def test_chunks_added_in_reverse_order_like_create_tasks(client: Any, new_job: Any) -> None:
    """230 tasks, each depending on the one at half its index, sent as the SDK sends them:
    chunks of 100 popped from the end of the list, so most dependents arrive first."""
    job_id = new_job(usesTaskDependencies=True)
    count = 230
    tasks: list[dict[str, Any]] = []
    for n in range(count):
        task: dict[str, Any] = {"id": f"n{n:03}"}
        if n:
            parent = f"n{n // 2:03}"
            task["dependsOn"] = {"taskIds": [parent]}
            task["commandLine"] = sh(f"{needs(parent)} && {mark(task['id'])}")
        else:
            task["commandLine"] = sh(mark(task["id"]))
        tasks.append(task)
    pending = list(tasks)
    while pending:
        chunk, pending = pending[-100:], pending[:-100]
        results = client.add_tasks(job_id, chunk)
        assert {r["status"] for r in results} == {"success"}
    done = [task_in(client, job_id, t["id"], "completed") for t in tasks[::-1]]
    assert {t["executionInfo"]["result"] for t in done} == {"success"}
    assert len(all_tasks(client, job_id)) == count
