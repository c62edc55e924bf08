"""The engine's in-memory job (`JobRun`) as tasks arrive in pieces, read from a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchflow.backends.local.jobrun import WAITING, JobRun
from batchflow.backends.local.service import BatchService

JOB_COLUMNS = "id, spec, state, creation_time, settled, n_done, base_dir, env, pool_required"


def job_run(service: BatchService, job_id: str) -> JobRun:
    rowid, *row = service.store.one(
        f"SELECT rowid, {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
    )
    return JobRun(rowid, tuple(row))


def ready_ids(job: JobRun) -> set[str]:
    return {str(idx - 1) for idx in job.ready}


def test_a_parent_added_between_the_load_and_the_recount_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine loads new rows, then re-reads each early child's dependencies: a parent
    committed in between is named there but not loaded yet. It counts as unfinished
    (before the fix: IndexError, and the engine died), and is linked exactly once when
    loaded, so the child starts after all its parents, not before."""
    service = BatchService(tmp_path / "state", engine=False)
    service.create_job({"id": "j", "poolInfo": {"poolId": "local"}, "usesTaskDependencies": True})
    service.add_task(
        "j",
        {
            "id": "child",
            "commandLine": "/bin/true",
            "dependsOn": {"taskIdRanges": [{"start": 1, "end": 3}]},
        },
    )
    job = job_run(service, "j")
    job.load(service.store)
    assert job.pending[1] == 3  # none of the range is there: waits
    service.add_tasks(
        "j", [{"id": "1", "commandLine": "/bin/true"}, {"id": "2", "commandLine": "/bin/true"}]
    )
    service.add_task("j", {"id": "3", "commandLine": "/bin/true"})
    # What a load sees when task 3 commits after its query and before the recount.
    real_query = service.store.query
    with monkeypatch.context() as patch:
        patch.setattr(
            service.store,
            "query",
            lambda sql, args=(): [r for r in real_query(sql, args) if r[0] < 3],
        )
        job.load(service.store)
    assert job.n == 4
    assert job.pending[1] == 3
    job.load(service.store)  # task 3
    assert job.n == 5
    assert job.children[4] == [1]  # linked once
    assert job.pending[1] == 3
    for idx in (2, 4, 3):
        job.ready.remove(idx)
        job.running += 1
        job.finish(idx, satisfied=True)
        assert (job.status[1], 1 in job.ready) == (WAITING, idx == 3)
    assert job.pending[1] == 0
