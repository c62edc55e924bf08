"""Store rows in Batch's REST wire shape: the one serializer every reader shares.

Jobs and tasks come back as the service returns them on `GET /jobs/{id}` and
`GET /jobs/{id}/tasks/{id}` (docs/semantics.md 4): camelCase names,
lowercase enum values, Batch's defaults filled in (`constraints`, `userIdentity`,
`requiredSlots`, `executionInfo` with zero counts while active), optional members left
out rather than null, times in ISO 8601 with seven fractional digits and `Z`, an `eTag`
that changes on every write. The CLI's `--output json` and the emulator print these dicts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from batchflow.backends.local.store import FAILURE, STATE_NAMES, SUCCESS
from batchflow.durations import INFINITE

__all__ = [
    "JOB_COLUMNS",
    "TASK_COLUMNS",
    "etag",
    "job_wire",
    "task_wire",
    "timestamp",
]

#: Columns `job_wire` reads, in its order.
JOB_COLUMNS = (
    "rowid, id, spec, state, previous_state, state_time, previous_state_time, creation_time, "
    "modified, end_time, terminate_reason"
)
#: Columns `task_wire` reads, in its order.
TASK_COLUMNS = (
    "seq, id, def, state, prev, state_time, prev_time, creation_time, modified, start, end, "
    "exit_code, result, failure, retries, requeues, last_retry, last_requeue, node, slots"
)

_AUTO_USER = {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}


_SECONDS: dict[int, str] = {}


def timestamp(value: float) -> str:
    """A store time as Batch writes it: `2024-10-24T01:15:18.9955081Z`."""
    second = int(value)
    ticks = round((value - second) * 10_000_000)
    if ticks == 10_000_000:
        second, ticks = second + 1, 0
    prefix = _SECONDS.get(second)
    if prefix is None:  # a listing's times share seconds: format each second once
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        moment = datetime.fromtimestamp(second, tz=UTC)
        prefix = _SECONDS[second] = moment.strftime("%Y-%m-%dT%H:%M:%S.")
    return f"{prefix}{ticks:07d}Z"


def etag(modified: float) -> str:
    """The entity tag of a row last written at `modified` (Batch's `0x8DB...` form)."""
    return f"0x{round(modified * 10_000_000) + 0x8D000000000000:X}"


def _states(wire: dict[str, Any], names: Any, row: tuple[Any, ...]) -> None:
    state, prev, state_time, prev_time = row
    wire["state"] = names(state)
    wire["stateTransitionTime"] = timestamp(state_time)
    if prev is not None:
        wire["previousState"] = names(prev)
        if prev_time is not None:
            wire["previousStateTransitionTime"] = timestamp(prev_time)


def job_wire(row: tuple[Any, ...]) -> dict[str, Any]:
    """A job row (`JOB_COLUMNS`) as `GET /jobs/{id}` returns it."""
    (_rowid, job_id, spec_text, state, prev, state_time, prev_time, created, modified) = row[:9]
    end_time, reason = row[9:11]
    spec = json.loads(spec_text)
    spec.pop("id", None)
    wire: dict[str, Any] = {
        "id": job_id,
        "eTag": etag(modified),
        "lastModified": timestamp(modified),
        "creationTime": timestamp(created),
    }
    _states(wire, str, (state, prev, state_time, prev_time))
    constraints = spec.pop("constraints", None) or {}
    pool_info = spec.pop("poolInfo", None) or {}
    wire.update(
        {
            "priority": spec.pop("priority", 0),
            "maxParallelTasks": spec.pop("maxParallelTasks", -1),
            "allowTaskPreemption": spec.pop("allowTaskPreemption", False),
            "usesTaskDependencies": spec.pop("usesTaskDependencies", False),
            "constraints": {
                "maxWallClockTime": constraints.get("maxWallClockTime", INFINITE),
                "maxTaskRetryCount": constraints.get("maxTaskRetryCount", 0),
            },
            "poolInfo": pool_info,
            "onAllTasksComplete": str(spec.pop("onAllTasksComplete", "noaction")).lower(),
            "onTaskFailure": str(spec.pop("onTaskFailure", "noaction")).lower(),
        }
    )
    wire.update(spec)
    info: dict[str, Any] = {"startTime": timestamp(created)}
    if pool_info.get("poolId"):
        info["poolId"] = pool_info["poolId"]
    if end_time is not None:
        info["endTime"] = timestamp(end_time)
    if reason is not None and state == "completed":
        info["terminateReason"] = reason
    wire["executionInfo"] = info
    return wire


def task_wire(
    row: tuple[Any, ...],
    *,
    job_retries: int = 0,
    task_dir: str | None = None,
    pool_id: str | None = None,
) -> dict[str, Any]:
    """A task row (`TASK_COLUMNS`) as `GET /jobs/{job}/tasks/{task}` returns it.

    `job_retries` is the job's maxTaskRetryCount (the default of the task's own),
    `task_dir` the task directory on its node, `pool_id` the job's pool.
    """
    (_seq, task_id, definition, state, prev, state_time, prev_time, created, modified) = row[:9]
    start, end, exit_code, result, failure, retries, requeues, last_retry = row[9:17]
    last_requeue, node, slots = row[17:20]
    spec = json.loads(definition)
    for key in [k for k in spec if k.startswith("$")]:
        del spec[key]
    # A task's times are mostly one moment (added and not touched since): format it once.
    last = timestamp(modified)
    wire: dict[str, Any] = {
        "id": task_id,
        "eTag": etag(modified),
        "creationTime": last if created == modified else timestamp(created),
        "lastModified": last,
        "state": STATE_NAMES[state],
        "stateTransitionTime": last if state_time == modified else timestamp(state_time),
    }
    if prev is not None:
        wire["previousState"] = STATE_NAMES[prev]
        if prev_time is not None:
            wire["previousStateTransitionTime"] = timestamp(prev_time)
    wire["commandLine"] = spec.pop("commandLine")
    constraints = spec.pop("constraints", None) or {}
    wire.update(spec)
    wire.setdefault("userIdentity", _AUTO_USER)
    wire["constraints"] = {
        "maxWallClockTime": constraints.get("maxWallClockTime", INFINITE),
        "retentionTime": constraints.get("retentionTime", "P7D"),
        "maxTaskRetryCount": constraints.get("maxTaskRetryCount", job_retries),
    }
    wire["requiredSlots"] = slots or spec.get("requiredSlots", 1)
    info: dict[str, Any] = {}
    if start is not None and state != 0:
        info["startTime"] = timestamp(start)
    if state == 3:
        if end is not None:
            info["endTime"] = timestamp(end)
        if exit_code is not None:
            info["exitCode"] = exit_code
        if result is not None:
            info["result"] = "success" if result == SUCCESS else "failure"
        if failure and result == FAILURE:
            info["failureInfo"] = json.loads(failure)
    info["retryCount"] = retries
    info["requeueCount"] = requeues
    if retries and last_retry is not None:
        info["lastRetryTime"] = timestamp(last_retry)
    if requeues and last_requeue is not None:
        info["lastRequeueTime"] = timestamp(last_requeue)
    wire["executionInfo"] = info
    if node is not None and state != 0:
        node_info: dict[str, Any] = {"nodeId": node, "poolId": pool_id or "local"}
        if task_dir is not None:
            node_info["taskRootDirectory"] = task_dir
        wire["nodeInfo"] = node_info
    return wire
