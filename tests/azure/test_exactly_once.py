"""Adding tasks exactly once: under injected faults, on retries that find their own tasks,
and when a collection is too large for one request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchflow.backends.azure import AzureBackend
from batchflow.backends.azure.submit import (
    HASH_VARIABLE,
    TaskAdder,
    chunks,
    prepare,
    stored_hash,
    task_hash,
)
from batchflow.dsl import Job
from batchflow.emulator import serve
from batchflow.emulator.server import EmulatorHandle, stop_engine
from batchflow.exceptions import BackendError
from batchflow.stack import AzureTarget


def target_of(handle: EmulatorHandle) -> AzureTarget:
    return AzureTarget(
        endpoint=handle.endpoint,
        account_name=handle.account_name,
        source="the emulator",
        account_key=handle.account_key,
    )


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[EmulatorHandle]:
    """An emulator where 10% of requests are throttled, fail or lose their connection
    (Retry-After 0: the test is about outcomes, not waiting)."""
    from batchflow.backends.local.paths import StateDir

    spec = "rate=0.1,codes=429:500:503,reset=0.03,seed=11,retry_after=0"
    with serve(state_dir=tmp_path / "faulty", faults=spec) as handle:
        try:
            yield handle
        finally:
            stop_engine(StateDir(handle.state_dir))


def test_ten_thousand_tasks_under_faults_are_each_added_once(faulty: EmulatorHandle) -> None:
    client = faulty.new_client(retry_total=20, retry_backoff_factor=0.01)
    for _ in range(20):  # the pool itself may meet a fault
        try:
            client.create_pool(
                {"id": "idle", "vmSize": "standard_d2s_v3", "targetDedicatedNodes": 0}
            )
            break
        except Exception as exc:  # an injected fault, or the pool from an attempt that got through
            if "PoolExists" in str(exc):
                break
    backend = AzureBackend(target_of(faulty), client=client)
    job = Job("storm", pool="idle", on_all_tasks_complete="terminatejob")
    job.map("t-{i:05d}", "/bin/true", i=range(10_000))
    result = backend.submit(job)
    assert (result.added, result.unchanged) == (10_000, 0)
    wires = [t.as_dict() for t in client.list_tasks("storm", select=["id", "environmentSettings"])]
    ids = [w["id"] for w in wires]
    assert len(ids) == 10_000 and set(ids) == {f"t-{i:05d}" for i in range(10_000)}
    expected = task_hash('{"commandLine":"/bin/true"}')
    assert {stored_hash(w) for w in wires} == {expected}
    assert client.get_job("storm").as_dict()["onAllTasksComplete"] == "terminatejob"
    again = backend.submit(job)
    assert (again.added, again.unchanged) == (0, 10_000)
    backend.close()


def test_a_retry_that_finds_its_own_task_is_a_success(batch_emulator: EmulatorHandle) -> None:
    client: Any = batch_emulator.client
    client.create_job({"id": "j", "poolInfo": {"poolId": "pool"}})
    tasks = prepare([{"id": "a", "commandLine": "/bin/true"}], ["h1"])
    adder = TaskAdder(client, batch_emulator.endpoint, "j", pause=lambda attempt: None)
    adder.add(tasks)
    adder.add(tasks)  # as a retry after a lost answer would
    assert (adder.added, adder.existed) == (2, 1)
    other = prepare([{"id": "A", "commandLine": "/bin/false"}], ["h2"])
    with pytest.raises(BackendError) as clash:
        adder.add(other)
    assert (clash.value.code, clash.value.task_id) == ("TaskDefinitionChanged", "A")
    stored = client.get_task("j", "a").as_dict()
    assert {"name": HASH_VARIABLE, "value": "h1"} in stored["environmentSettings"]


def test_collections_stay_under_batch_limits() -> None:
    small = prepare([{"id": f"s{i}", "commandLine": "x"} for i in range(250)], ["h"] * 250)
    assert [len(c) for c in chunks(small)] == [100, 100, 50]
    big = prepare([{"id": f"b{i}", "commandLine": "x" * 300_000} for i in range(7)], ["h"] * 7)
    sizes = [len(c) for c in chunks(big)]
    assert sizes == [3, 3, 1]
    assert all(sum(t.size for t in c) < 1_000_000 for c in chunks(big))


def test_a_413_splits_the_collection(batch_emulator: EmulatorHandle) -> None:
    """The emulator refuses a body over 1 MB as Batch does; the adder's estimate is
    bypassed here (one chunk of everything), so only the split gets them in."""
    import batchflow.backends.azure.submit as submit

    client: Any = batch_emulator.client
    client.create_job({"id": "big", "poolInfo": {"poolId": "pool"}})
    tasks = prepare(
        [{"id": f"b{i}", "commandLine": "/bin/echo " + "x" * 200_000} for i in range(8)],
        ["h"] * 8,
    )
    adder = TaskAdder(client, batch_emulator.endpoint, "big", workers=1)
    adder._add_group(tasks)  # 1.6 MB in one request: 413, then halves
    assert adder.added == 8
    assert len(list(client.list_tasks("big", select=["id"]))) == 8
    assert submit.MAX_BYTES == 1_000_000
