"""Many threads adding and reading through one client at once, with nothing lost."""

from __future__ import annotations

import threading
from typing import Any

from tests.contract.conftest import all_tasks, sh, wait_for

ADDERS = 8
ADDS = 6  # per adder
PER_ADD = 25
READERS = 4


def test_concurrent_adds_and_reads_lose_nothing(client: Any, new_job: Any) -> None:
    """8 threads add 1,200 tasks with add_tasks while 4 read get_task / list_tasks /
    task_counts, all through the one client; then every task is there exactly once."""
    job_id = new_job(usesTaskDependencies=True)
    never = {"dependsOn": {"taskIds": ["never-added"]}}  # nothing runs: only the store works
    added: list[str] = []  # ids whose add answered success, in no particular order
    lock = threading.Lock()
    errors: list[BaseException] = []
    adding = threading.Event()
    start = threading.Barrier(ADDERS + READERS)

    def adder(n: int) -> None:
        try:
            start.wait()
            for a in range(ADDS):
                tasks = [
                    {"id": f"a{n}-{a}-{k:02}", "commandLine": sh("exit 0"), **never}
                    for k in range(PER_ADD)
                ]
                results = client.add_tasks(job_id, tasks)
                assert {r["status"] for r in results} == {"success"}, results
                with lock:
                    added.extend(r["taskId"] for r in results)
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            start.wait()
            while adding.is_set():
                with lock:
                    known = added[-1] if added else None
                    total = len(added)
                if known is not None:
                    assert client.get_task(job_id, known)["id"] == known
                page = client.list_tasks(job_id, limit=50)
                assert len(page) <= 50
                counts = client.task_counts(job_id)["taskCounts"]
                assert 0 <= counts["active"] <= ADDERS * ADDS * PER_ADD, counts
                assert total <= ADDERS * ADDS * PER_ADD
        except BaseException as exc:
            errors.append(exc)

    adding.set()
    adders = [threading.Thread(target=adder, args=(n,)) for n in range(ADDERS)]
    readers = [threading.Thread(target=reader) for _ in range(READERS)]
    for thread in [*adders, *readers]:
        thread.start()
    for thread in adders:
        thread.join()
    adding.clear()
    for thread in readers:
        thread.join()
    if errors:
        raise errors[0]

    expected = {
        f"a{n}-{a}-{k:02}" for n in range(ADDERS) for a in range(ADDS) for k in range(PER_ADD)
    }
    assert len(added) == len(expected) == ADDERS * ADDS * PER_ADD
    assert set(added) == expected
    listed = [t["id"] for t in all_tasks(client, job_id)]
    assert len(listed) == len(expected)
    assert set(listed) == expected
    wait_for(
        lambda: client.task_counts(job_id)["taskCounts"]["active"],
        lambda active: active == len(expected),
        "every task counted active",
    )


def test_concurrent_adds_of_the_same_ids_add_each_once(client: Any, new_job: Any) -> None:
    """8 threads add the same 100 ids: each id is added by exactly one of them, the others
    get TaskExists for it."""
    job_id = new_job(usesTaskDependencies=True)
    never = {"dependsOn": {"taskIds": ["never-added"]}}
    tasks = [{"id": f"t{k:03}", "commandLine": sh("exit 0"), **never} for k in range(100)]
    outcomes: list[list[dict[str, Any]]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(ADDERS)

    def adder() -> None:
        try:
            start.wait()
            outcomes.append(client.add_tasks(job_id, tasks))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=adder) for _ in range(ADDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    wins: dict[str, int] = {}
    for results in outcomes:
        for result in results:
            if result["status"] == "success":
                wins[result["taskId"]] = wins.get(result["taskId"], 0) + 1
            else:
                assert result["error"]["code"] == "TaskExists", result
    assert wins == {t["id"]: 1 for t in tasks}
    assert len(all_tasks(client, job_id)) == 100
