"""What the service offers its HTTP edge: `$filter` trees compiled into SQL, conditional
requests, and wire bodies in the model's form (strings for integers, any enum casing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from batchflow.backends.local.conditions import Conditions, check
from batchflow.backends.local.filters import Compare, Logical, Not, StartsWith, name_prefix
from batchflow.backends.local.paths import StateDir
from batchflow.backends.local.service import BatchService
from batchflow.backends.local.taskspec import check_job, check_job_changes
from batchflow.exceptions import BackendError


@pytest.fixture
def service(tmp_path: Path) -> BatchService:
    svc = BatchService(StateDir(tmp_path / "state"), engine=False, pool_required=True)
    svc.create_job({"id": "j", "poolInfo": {"poolId": "none-yet"}})
    svc.add_tasks("j", [{"id": f"t{i}", "commandLine": "/bin/true"} for i in range(5)])
    svc.add_tasks("j", [{"id": "other", "commandLine": "/bin/true"}])
    return svc


def ids(page: list[dict[str, object]]) -> list[object]:
    return [t["id"] for t in page]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # an id and a state, enum casing ignored
        (
            Logical("and", (Compare("state", "eq", "Active"), Compare("id", "eq", "T3"))),
            ["t3"],
        ),
        (StartsWith("id", "t"), ["t0", "t1", "t2", "t3", "t4"]),
        (Not(StartsWith("id", "t")), ["other"]),
        (Logical("or", (Compare("id", "lt", "t1"), Compare("id", "eq", "other"))), ["t0", "other"]),
        # exitCode is absent while active: `ne` holds (OData's null), `gt` does not
        (Compare("executionInfo/exitCode", "ne", 0), ["t0", "t1", "t2", "t3", "t4", "other"]),
        (Compare("executionInfo/exitCode", "gt", 0), []),
        (Compare("executionInfo/result", "eq", "Failure"), []),
        (
            Compare("creationTime", "gt", datetime.now(UTC) - timedelta(hours=1)),
            ["t0", "t1", "t2", "t3", "t4", "other"],
        ),
    ],
)
def test_task_filters_select_in_sql(
    service: BatchService, where: object, expected: list[str]
) -> None:
    assert ids(service.list_tasks("j", where=where)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("where", "named"),
    [
        (Compare("commandLine", "eq", "x"), "commandLine"),  # not a filterable property
        (Compare("state", "gt", "active"), "state"),  # enums take eq / ne only
        (Compare("state", "eq", "sleeping"), "state"),  # not a task state
        (Compare("executionInfo/exitCode", "eq", "zero"), "executionInfo/exitCode"),
        (StartsWith("state", "a"), "state"),
    ],
)
def test_unsupported_task_filters_are_refused_by_name(
    service: BatchService, where: object, named: str
) -> None:
    with pytest.raises(BackendError) as caught:
        service.list_tasks("j", where=where)  # type: ignore[arg-type]
    assert caught.value.code == "InvalidQueryParameterValue"
    assert dict(caught.value.values)["QueryParameterValue"] == named


def test_job_and_pool_filters(service: BatchService) -> None:
    service.create_job({"id": "Second", "poolInfo": {"poolId": "p2"}, "priority": 5})
    assert ids(service.list_jobs(where=Compare("id", "eq", "second"))) == ["Second"]
    assert ids(service.list_jobs(where=Compare("priority", "gt", 0))) == ["Second"]
    assert ids(service.list_jobs(where=StartsWith("executionInfo/poolId", "none"))) == ["j"]
    service.pools.create({"id": "p2", "vmSize": "Standard_D2s_v3", "targetDedicatedNodes": "1"})
    page = service.pools.list_pools(where=Compare("vmSize", "eq", "standard_d2s_v3"))
    assert ids(page) == ["p2"]
    with pytest.raises(BackendError, match="cannot be filtered"):
        service.list_jobs(where=Compare("displayName", "eq", "x"))


def test_file_filters_take_only_a_name_prefix() -> None:
    assert name_prefix(StartsWith("name", "wd/")) == "wd/"
    assert name_prefix(None) == ""
    with pytest.raises(BackendError) as caught:
        name_prefix(Compare("name", "eq", "x"))
    assert caught.value.code == "InvalidQueryParameterValue"


def test_conditions_on_an_entity_tag_and_dates(service: BatchService) -> None:
    job = service.get_job("j")
    tag, modified = job["eTag"], datetime.fromisoformat(job["lastModified"][:19] + "+00:00")
    check(job, Conditions(if_match=f'"{tag}"'))
    check(job, Conditions(if_match="*"))
    check(job, Conditions(if_none_match='"0x1"'))
    check(job, Conditions(if_unmodified_since=modified))
    check(job, Conditions(if_modified_since=modified - timedelta(seconds=1)))
    for failing in (
        Conditions(if_match='"0x1"'),
        Conditions(if_none_match=tag),
        Conditions(if_none_match="*"),
        Conditions(if_modified_since=modified),
        Conditions(if_unmodified_since=modified - timedelta(seconds=1)),
    ):
        with pytest.raises(BackendError) as caught:
            check(job, failing)
        assert caught.value.code == "ConditionNotMet"
    with pytest.raises(BackendError):
        check(None, Conditions(if_match="*"))


def test_what_clients_send_is_stored_in_the_models_form(service: BatchService) -> None:
    # az sends integers as strings and enums as typed; SDK 15 sends PT01H00M00S
    spec = check_job(
        {
            "id": "az",
            "priority": "100",
            "constraints": {"maxTaskRetryCount": "3", "maxWallClockTime": "PT24H"},
            "onAllTasksComplete": "terminateJob",
            "poolInfo": {"poolId": "p"},
        }
    )
    assert spec["priority"] == 100
    assert spec["constraints"] == {"maxTaskRetryCount": 3, "maxWallClockTime": "P1D"}
    service.create_job(spec)
    assert service.get_job("az")["onAllTasksComplete"] == "terminatejob"
    assert check_job_changes("az", {"priority": "7"}) == {"priority": 7}
    with pytest.raises(BackendError) as caught:
        check_job({"id": "bad", "priority": "high"})
    assert (caught.value.code, caught.value.job_id) == ("InvalidPropertyValue", "bad")
    service.update_task("j", "t1", {"maxTaskRetryCount": "2", "maxWallClockTime": "PT01H00M00S"})
    constraints = service.get_task("j", "t1")["constraints"]
    assert constraints["maxTaskRetryCount"] == 2
    assert constraints["maxWallClockTime"] == "PT1H"


def test_an_idle_engine_poked_again_and_again_stays(tmp_path: Path) -> None:
    """Adds to a job whose pool does not exist leave the engine nothing to run; each one
    pokes it and it lingers afresh, instead of exiting and being started by the next add
    (a Python start per add: what made the emulator's adds slow)."""
    from batchflow.backends.local.control import engine_pid
    from tests.local.conftest import stop_engine

    state = StateDir(tmp_path / "state")
    svc = BatchService(state, pool_required=True)
    try:
        svc.create_job({"id": "waits", "poolInfo": {"poolId": "none"}})
        pids = set()
        for n in range(30):
            svc.add_tasks("waits", [{"id": f"t{n}", "commandLine": "/bin/true"}])
            pids.add(engine_pid(state))
        assert len(pids - {None}) <= 2
    finally:
        svc.close()
        stop_engine(state.root)
