"""Pools created through the service: sets of local nodes that jobs wait for, as on Batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from batchflow.backends.local.paths import StateDir
from batchflow.backends.local.service import BatchService
from batchflow.exceptions import BackendError
from tests.local.conftest import wait_for

POOL = {"id": "render", "vmSize": "standard_d2s_v5", "targetDedicatedNodes": 2}


@pytest.fixture
def batch(state_dir: Path) -> Iterator[BatchService]:
    """A service whose jobs need their pool, as the emulator's do."""
    service = BatchService(StateDir(state_dir), pool_required=True)
    yield service
    service.close()


def gated(gate: Path) -> str:
    return f"/bin/sh -c 'while [ ! -e {gate} ]; do sleep 0.01; done'"


def test_a_job_waits_for_its_pool_then_runs_on_its_nodes(batch: BatchService) -> None:
    batch.create_job({"id": "j", "poolInfo": {"poolId": "render"}})
    batch.add_task("j", {"id": "t", "commandLine": "/bin/true"})
    wait_for(lambda: batch.store.one("SELECT settled FROM jobs")[0] == 1)  # nothing can run
    assert batch.get_task("j", "t")["state"] == "active"
    pool = batch.pools.create(dict(POOL, taskSlotsPerNode="2"))  # az sends integers as text
    assert (pool["state"], pool["allocationState"], pool["taskSlotsPerNode"]) == (
        "active",
        "steady",
        2,
    )
    wait_for(lambda: batch.get_task("j", "t")["state"] == "completed")
    assert batch.get_task("j", "t")["nodeInfo"]["nodeId"] in ("tvm-render-1", "tvm-render-2")
    nodes = batch.pools.nodes("render")
    assert [n["id"] for n in nodes] == ["tvm-render-1", "tvm-render-2"]
    assert batch.pools.get("render")["currentDedicatedNodes"] == 2
    with pytest.raises(BackendError) as caught:
        batch.pools.create(POOL)
    assert caught.value.code == "PoolExists"


def test_resizing_to_zero_requeues_what_ran_there(batch: BatchService, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    batch.pools.create(dict(POOL, targetDedicatedNodes=1))
    batch.create_job({"id": "j", "poolInfo": {"poolId": "render"}})
    batch.add_task("j", {"id": "t", "commandLine": gated(gate)})
    wait_for(lambda: batch.get_task("j", "t")["state"] == "running")
    batch.pools.resize("render", target_dedicated_nodes=0)
    wait_for(lambda: batch.get_task("j", "t")["state"] == "active")
    assert batch.get_task("j", "t")["executionInfo"]["requeueCount"] == 1
    assert batch.pools.get("render")["allocationState"] == "steady"
    assert batch.pools.nodes("render") == []
    gate.touch()
    batch.pools.resize("render", target_dedicated_nodes=1)
    wait_for(lambda: batch.get_task("j", "t")["state"] == "completed")
    assert batch.get_task("j", "t")["executionInfo"]["result"] == "success"


def test_a_deleted_pool_is_deleting_then_gone(batch: BatchService) -> None:
    batch.pools.create(POOL)
    assert batch.pools.exists("RENDER")  # ids compare case-insensitively
    batch.pools.delete("render")
    state = batch.pools.get("render")["state"] if batch.pools.exists("render") else None
    assert state in ("deleting", None)
    wait_for(lambda: not batch.pools.exists("render"))
    with pytest.raises(BackendError) as caught:
        batch.pools.get("render")
    assert caught.value.code == "PoolNotFound"


def test_bad_pools_are_refused_with_batch_codes(batch: BatchService) -> None:
    cases = [
        ({"id": "bad id", "vmSize": "x"}, "InvalidPropertyValue"),  # a space in the id
        ({"id": "p"}, "MissingRequiredProperty"),  # no vmSize
        ({"id": "p", "vmSize": "x", "targetDedicatedNodes": "many"}, "InvalidPropertyValue"),
        ({"id": "p", "vmSize": "x", "taskSlotsPerNode": 0}, "InvalidPropertyValue"),
    ]
    for spec, code in cases:
        with pytest.raises(BackendError) as caught:
            batch.pools.create(spec)
        assert caught.value.code == code, spec


def test_node_files_are_the_nodes_directory_tree(batch: BatchService) -> None:
    batch.pools.create(dict(POOL, targetDedicatedNodes=1))
    batch.create_job({"id": "j", "poolInfo": {"poolId": "render"}})
    batch.add_task("j", {"id": "t", "commandLine": "/bin/sh -c 'echo hi'"})
    wait_for(lambda: batch.get_task("j", "t")["state"] == "completed")
    names = {f["name"] for f in batch.node_files.list("render", "tvm-render-1", recursive=True)}
    assert "workitems/j/job-1/t/stdout.txt" in names
    data = batch.node_files.read("render", "tvm-render-1", "workitems/j/job-1/t/stdout.txt")
    assert data == b"hi\n"
    with pytest.raises(BackendError) as caught:
        batch.node_files.read("render", "tvm-render-9", "x")
    assert caught.value.code == "NodeNotFound"


def test_jobs_of_the_cli_run_on_the_state_directorys_nodes(state_dir: Path) -> None:
    """Without pool_required a job's poolId names no pool of the service: it runs here."""
    service = BatchService(StateDir(state_dir))
    service.create_job({"id": "j", "poolInfo": {"poolId": "somewhere"}})
    service.add_task("j", {"id": "t", "commandLine": "/bin/true"})
    wait_for(lambda: service.get_task("j", "t")["state"] == "completed")
    assert service.get_task("j", "t")["nodeInfo"]["nodeId"] == "node-1"
    service.close()
